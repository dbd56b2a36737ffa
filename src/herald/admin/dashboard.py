"""The dashboard: totals by status, messages sent over the last day, running mailings with live progress."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from herald.admin.common import Progress, column_chart, render, zone
from herald.app_keys import clock_key, store_key
from herald.store.stats import with_total

HOURS = 24


async def dashboard(request: web.Request) -> web.Response:
    store, now = request.config_dict[store_key], request.config_dict[clock_key].now()
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    sent = await store.stats.sent_per_interval(this_hour - timedelta(hours=HOURS - 1), timedelta(hours=1), HOURS)
    running = await store.mailings.running(now)
    counts = await store.stats.by_mailing(mailing.id for mailing in running)
    operator = zone(request)
    return render(
        request,
        "dashboard.html",
        {
            "overall": with_total(await store.stats.overall()),
            "sent_chart": column_chart([(begin.astimezone(operator).strftime("%H:00"), n) for begin, n in sent]),
            "sent_total": sum(n for _, n in sent),
            "running": [(mailing, Progress.of(counts[mailing.id])) for mailing in running],
        },
    )
