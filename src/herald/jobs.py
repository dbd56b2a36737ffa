"""Scheduled jobs, run by APScheduler in the processes with the planner role; each is a plain function of its inputs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from herald.api.idempotency import LIFETIME
from herald.app_keys import clock_key, config_key, metrics_key, store_key
from herald.clock import Clock
from herald.metrics import Metrics
from herald.report.daily import due_day, send_daily_report
from herald.store import Store

log = logging.getLogger(__name__)


async def purge_idempotency_keys(store: Store, clock: Clock) -> int:
    """Keys older than their lifetime: a retry treats them as new already; this keeps the collection a day long.
    (On MongoDB a TTL index could do it; FerretDB 1.x has no TTL indexes, they came with 2.0: one job serves both.)"""
    purged = await store.idempotency.purge(clock.now() - LIFETIME)
    if purged:
        log.info("expired idempotency keys purged", extra={"purged": purged})
    return purged


def _count_run(metrics: Metrics, event: JobEvent) -> None:
    result = {EVENT_JOB_ERROR: "error", EVENT_JOB_MISSED: "missed"}.get(event.code, "ok")
    metrics.job_runs.labels(event.job_id, result).inc()


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_listener(
        lambda event: _count_run(app[metrics_key], event), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
    )
    email = app[config_key].email
    if email.enabled:
        # Every planner process schedules it; the report's claim in the database lets one of them send it. A
        # process that starts after the send time runs it at once, in case the report is still due.
        catch_up = {"next_run_time": datetime.now(UTC)} if due_day(app[clock_key].now(), email) else {}
        scheduler.add_job(
            send_daily_report,
            CronTrigger(hour=email.send_time.hour, minute=email.send_time.minute, timezone=email.zone),
            id="daily_report",
            kwargs={"store": app[store_key], "clock": app[clock_key], "config": email},
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
            **catch_up,
        )
    scheduler.add_job(
        purge_idempotency_keys,
        IntervalTrigger(hours=1),
        id="idempotency_keys",
        kwargs={"store": app[store_key], "clock": app[clock_key]},
        coalesce=True,
        max_instances=1,
    )
    scheduler.start()
    yield
    scheduler.shutdown(wait=False)
