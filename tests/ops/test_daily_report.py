"""The daily statistics email, end to end: FerretDB, a real SMTP server on loopback, a fake clock for the day."""

import asyncio
import logging
import re
from dataclasses import asdict
from datetime import datetime, time

import pytest

from herald.app import Role
from herald.domain.models import SendWindow
from herald.localdb import free_port
from herald.report.daily import send_daily_report
from herald.report.mail import SEND_ERRORS
from herald.store import Store
from herald.store.db import connect
from tests.helpers import T0, eventually
from tests.ops.conftest import RECIPIENTS, scrape, scraped, value

DAY = "2026-05-31"  # T0 is 2026-06-01 12:00 UTC, past the 08:00 send time: yesterday's report is due


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _mailing(store, db, text, start, end, statuses, **fields):
    mailing = await store.mailings.create({"text": text, "start_at": at(start), "end_at": at(end), **fields}, T0)
    await db.messages.insert_many(
        [
            {"_id": mailing.id << 32 | n, "mailing_id": mailing.id, "client_id": n, "status": status}
            for n, status in enumerate(statuses, start=1)
        ]
    )
    return mailing


@pytest.fixture
async def day_of_mailings(store, db):
    """Two mailings ran on the 31st; one ended before it, one starts after it, one was deleted."""
    sale = await _mailing(
        store,
        db,
        "Summer sale:\n20% off everything",
        "2026-05-31T09:00:00Z",
        "2026-05-31T18:00:00Z",
        ["sent"] * 3 + ["failed", "expired"],
    )
    week = await _mailing(
        store,
        db,
        "Week-long news",
        "2026-05-30T00:00:00Z",
        "2026-06-02T00:00:00Z",
        ["sent", "sent", "pending", "pending"],
        send_window=SendWindow(time(9), time(21)),
    )
    await _mailing(store, db, "Old", "2026-05-29T00:00:00Z", "2026-05-31T00:00:00Z", ["sent"] * 7)
    await _mailing(store, db, "Next", "2026-06-01T00:00:00Z", "2026-06-01T23:00:00Z", ["sent"] * 7)
    deleted = await _mailing(store, db, "Gone", "2026-05-31T00:00:00Z", "2026-05-31T23:00:00Z", ["cancelled"] * 7)
    await store.mailings.delete(deleted.id, T0)
    return sale, week


async def test_the_report_arrives_with_subject_parts_and_figures(store, clock, email_config, smtp, day_of_mailings):
    sale, week = day_of_mailings
    assert await send_daily_report(store, clock, email_config.email)

    (message,) = smtp.mailbox.messages
    assert message["Subject"] == f"Herald daily report {DAY}: 2 mailings, 5 sent, 1 failed"
    assert smtp.mailbox.envelopes == [("herald@example.com", list(RECIPIENTS))]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # SMTP lines end in CRLF
    html = message.get_body(("html",)).get_content()
    assert "2 mailings, 9 messages: 2 pending, 0 sending, 5 sent, 1 failed, 1 expired, 0 cancelled" in text
    assert (
        f"Mailing {sale.id}: Summer sale: 20% off everything\n  2026-05-31 09:00 – 2026-05-31 18:00\n"
        "  total 5: 0 pending, 0 sending, 3 sent, 1 failed, 1 expired, 0 cancelled" in text
    )
    assert (
        f"Mailing {week.id}: Week-long news\n  2026-05-30 00:00 – 2026-06-02 00:00, "
        "sending 09:00–21:00 client time\n  total 4: 2 pending, 0 sending, 2 sent, 0 failed" in text
    )
    assert "Old" not in text and "Next" not in text and "Gone" not in text

    head = re.findall(r"<th\b[^>]*>(.*?)</th>", html)
    assert head == [
        "Mailing",
        "Text",
        "Window",
        "Total",
        "pending",
        "sending",
        "sent",
        "failed",
        "expired",
        "cancelled",
    ]
    rows = [re.findall(r"<td\b[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", html)[1:]]
    assert rows == [  # in start order
        [
            str(week.id),
            "Week-long news",
            "2026-05-30 00:00 – 2026-06-02 00:00, sending 09:00–21:00 client time",
            "4",
            "2",
            "0",
            "2",
            "0",
            "0",
            "0",
        ],
        [
            str(sale.id),
            "Summer sale: 20% off everything",
            "2026-05-31 09:00 – 2026-05-31 18:00",
            "5",
            "0",
            "0",
            "3",
            "1",
            "1",
            "0",
        ],
        ["All", "", "", "9", "2", "0", "5", "1", "1", "0"],
    ]
    assert not re.search(r"<(img|link|script)\b|\bsrc=|url\(", html)  # nothing a mail client would fetch


async def test_a_second_run_the_same_day_sends_nothing_even_after_a_restart(store, clock, email_config, smtp):
    assert await send_daily_report(store, clock, email_config.email)
    assert not await send_daily_report(store, clock, email_config.email)
    clock.advance(hours=11)  # 23:00: a process (re)started late in the day runs the job again
    assert not await send_daily_report(store, clock, email_config.email)
    assert len(smtp.mailbox.messages) == 1
    clock.advance(hours=10)  # the next day, past 08:00: the next day's report
    assert await send_daily_report(store, clock, email_config.email)
    assert [m["Subject"].split()[3] for m in smtp.mailbox.messages] == ["2026-05-31:", "2026-06-01:"]


async def test_processes_racing_for_the_report_send_it_once(db_url, clock, email_config, smtp):
    # A client each, as separate processes have: only the claim in the database can keep them apart.
    clients = [connect(db_url) for _ in range(4)]
    try:
        stores = [Store.over(client.get_default_database()) for client in clients]
        results = await asyncio.gather(*(send_daily_report(s, clock, email_config.email) for s in stores))
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    assert sorted(results) == [False, False, False, True]
    assert len(smtp.mailbox.messages) == 1


async def test_before_the_send_time_nothing_is_due(store, clock, email_config, smtp):
    clock.set(at("2026-06-01T07:59:00Z"))
    assert not await send_daily_report(store, clock, email_config.email)
    assert smtp.mailbox.messages == []


async def test_an_smtp_server_refusing_for_a_while_is_retried(store, clock, email_config, smtp, caplog):
    smtp.mailbox.refuse_next = 2
    with caplog.at_level(logging.WARNING, logger="herald.report.mail"):
        assert await send_daily_report(store, clock, email_config.email)
    assert smtp.mailbox.refused == 2 and len(smtp.mailbox.messages) == 1
    assert [r.getMessage() for r in caplog.records] == ["report email not sent; trying again"] * 2


async def test_an_smtp_outage_fails_the_run_and_frees_the_day_for_the_next(store, clock, email_config, smtp):
    down = email_config.replace(email={"smtp_port": free_port(), "attempts": 2})  # nothing listens there
    with pytest.raises(SEND_ERRORS):
        await send_daily_report(store, clock, down.email)
    assert await store.reports.last_sent() is None
    assert await send_daily_report(store, clock, email_config.email)  # at once: the failed run let it go
    assert len(smtp.mailbox.messages) == 1


async def test_a_claim_left_by_a_dead_process_is_taken_over_after_its_lease(store, clock, email_config, smtp):
    assert await store.reports.claim(at(DAY + "T00:00:00Z").date(), "dead-process", clock.now(), lease_s=600)
    assert not await send_daily_report(store, clock, email_config.email)
    clock.advance(601)
    assert await send_daily_report(store, clock, email_config.email)
    assert len(smtp.mailbox.messages) == 1


async def test_a_planner_process_started_after_the_send_time_catches_up_once(start_herald, email_config, smtp, clock):
    roles = frozenset({Role.PLANNER})
    first = await start_herald(roles, email=asdict(email_config.email))
    await eventually(lambda: scraped(first, "herald_job_runs_total", job="daily_report", result="ok"))
    second = await start_herald(roles, email=asdict(email_config.email))
    await eventually(lambda: scraped(second, "herald_job_runs_total", job="daily_report", result="ok"))
    assert len(smtp.mailbox.messages) == 1
    samples = await scrape(second)
    assert value(samples, "herald_report_last_sent_timestamp_seconds") == clock.now().timestamp()


async def test_a_failing_report_job_is_counted_and_the_process_carries_on(start_herald, email_config):
    down = email_config.replace(email={"smtp_port": free_port(), "attempts": 2})
    worker = await start_herald(frozenset({Role.PLANNER}), email=asdict(down.email))
    await eventually(lambda: scraped(worker, "herald_job_runs_total", job="daily_report", result="error"))
    assert (await worker.get("/healthz")).status == 200
    assert value(await scrape(worker), "herald_report_last_sent_timestamp_seconds") == 0
