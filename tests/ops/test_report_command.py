"""`herald report` as an operator runs it: a real process, the test's database, the loopback SMTP server."""

import asyncio
import os
import subprocess
import sys
from datetime import datetime

from herald.localdb import free_port
from tests.ops.conftest import RECIPIENTS


async def herald_report(config, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HERALD_MONGO_URL": config.mongo.url,
        "HERALD_LOG_LEVEL": "WARNING",
        **{f"HERALD_EMAIL_{key.upper()}": str(value) for key, value in vars(config.email).items()},
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "herald", "report", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


async def _a_mailing_on_the_31st(store):
    await store.mailings.create(
        {
            "text": "Holiday hours",
            "start_at": datetime.fromisoformat("2026-05-31T08:00Z"),
            "end_at": datetime.fromisoformat("2026-05-31T20:00Z"),
        },
        datetime.fromisoformat("2026-05-30T00:00Z"),
    )


async def test_dry_run_prints_the_report_and_sends_nothing(email_config, store, smtp):
    await _a_mailing_on_the_31st(store)
    result = await herald_report(email_config, "--date", "2026-05-31", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Subject: Herald daily report 2026-05-31: 1 mailings, 0 sent, 0 failed\n")
    assert ": Holiday hours\n  2026-05-31 08:00 – 2026-05-31 20:00\n" in result.stdout
    assert smtp.mailbox.messages == [] and await store.reports.last_sent() is None


async def test_report_sends_the_day_once(email_config, store, smtp):
    await _a_mailing_on_the_31st(store)
    sent = await herald_report(email_config, "--date", "2026-05-31")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == f"the report for 2026-05-31 was sent to {', '.join(RECIPIENTS)}"
    again = await herald_report(email_config, "--date", "2026-05-31")
    assert again.returncode == 0 and "was sent already" in again.stdout
    (message,) = smtp.mailbox.messages
    assert "Holiday hours" in message.get_body(("plain",)).get_content()


async def test_report_fails_loudly_when_smtp_is_down(email_config):
    down = email_config.replace(email={"smtp_port": free_port(), "attempts": 1})
    result = await herald_report(down, "--date", "2026-05-31")
    assert result.returncode != 0 and "herald report: not sent: " in result.stderr
