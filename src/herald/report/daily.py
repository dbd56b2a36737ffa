"""The daily job: once the send time has passed, the previous day's report goes out, once, from one process."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from herald.clock import Clock
from herald.config import EmailConfig
from herald.report import mail
from herald.report.content import Report, build_report
from herald.store import Store

log = logging.getLogger(__name__)

# A claim outlives the longest send by this much (the database writes around it); a take older than that is
# deemed dead and may be taken over.
LEASE_MARGIN_S = 60.0


def yesterday(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date() - timedelta(days=1)


def due_day(now: datetime, config: EmailConfig) -> date | None:
    """The day whose report is due at `now`: yesterday once today's send time has passed, else none."""
    return yesterday(now, config.zone) if now.astimezone(config.zone).time() >= config.send_time else None


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The day's start and end in UTC (23 or 25 hours apart on a daylight saving change)."""
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


async def build(store: Store, day: date, zone: ZoneInfo) -> Report:
    """The report of `day`: every mailing that ran at some time of it, with its message counts by status."""
    mailings = await store.mailings.active_between(*_day_bounds(day, zone))
    counts = await store.stats.by_mailing(m.id for m in mailings)
    return build_report(day, zone, [(m, counts[m.id]) for m in mailings])


async def send_daily_report(store: Store, clock: Clock, config: EmailConfig, day: date | None = None) -> bool:
    """Mail the report of `day` (by default the one due now) unless it was sent or another process is sending it.

    Returns True if this call sent it. A failure after every retry releases the day, logs and raises.
    """
    day = day or due_day(clock.now(), config)
    if day is None:
        return False
    key = await store.reports.claim(
        day, f"report-{uuid.uuid4().hex[:12]}", clock.now(), mail.longest_send_s(config) + LEASE_MARGIN_S
    )
    if key is None:
        log.info("daily report already sent or being sent", extra={"day": day.isoformat()})
        return False
    try:
        report = await build(store, day, config.zone)
        await mail.send(mail.compose(report, config, clock.now()), config)
    except BaseException as exc:
        log.error("daily report not sent", extra={"day": day.isoformat(), "error": f"{type(exc).__name__}: {exc}"})
        await store.reports.release(key, clock.now())
        raise
    await store.reports.mark_sent(key, clock.now())
    log.info("daily report sent", extra={"day": day.isoformat(), "recipients": len(config.to)})
    return True
