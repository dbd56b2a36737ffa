"""`herald report`: build the daily report on demand, and send it (through the same once-a-day claim) or print it."""

from __future__ import annotations

from datetime import date

from herald.clock import SYSTEM_CLOCK, Clock
from herald.config import Config
from herald.report.daily import build, send_daily_report, yesterday
from herald.store import Store
from herald.store.db import connect, ensure_indexes


async def report_command(config: Config, day: date | None, *, dry_run: bool, clock: Clock = SYSTEM_CLOCK) -> str:
    """What to print: the report itself for a dry run, else what became of the sending. Raises if it failed."""
    email = config.email
    day = day or yesterday(clock.now(), email.zone)
    client = connect(config.mongo.url, config.mongo.timeout_s)
    try:
        db = client[config.mongo.database]
        store = Store.over(db)
        if dry_run:
            report = await build(store, day, email.zone)
            return f"Subject: {report.subject}\n\n{report.text}"
        await ensure_indexes(db)
        if await send_daily_report(store, clock, email, day):
            return f"the report for {day.isoformat()} was sent to {', '.join(email.to)}"
        sent_at = await store.reports.sent_at(day)
        if sent_at is None:
            return f"the report for {day.isoformat()} is being sent by another process"
        return f"the report for {day.isoformat()} was sent already, at {sent_at.isoformat()}"
    finally:
        await client.close()
