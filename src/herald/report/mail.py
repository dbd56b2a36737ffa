"""The report as a MIME email, sent over SMTP (aiosmtplib) with a few retries."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from herald.config import EmailConfig
from herald.domain.backoff import longest_retry_delay, retry_delay
from herald.report.content import Report

log = logging.getLogger(__name__)

# Connection failures come as OSError (refused, reset), slow servers as TimeoutError (both from asyncio.timeout
# and from aiosmtplib), and 4xx/5xx answers as SMTPException.
SEND_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)


def compose(report: Report, config: EmailConfig, now: datetime) -> EmailMessage:
    """A multipart/alternative message: the plain text first, the HTML table as the richer alternative."""
    message = EmailMessage()
    message["Subject"] = report.subject
    message["From"] = config.sender
    message["To"] = ", ".join(config.to)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("herald-report")
    message.set_content(report.text)
    message.add_alternative(report.html, subtype="html")
    return message


def longest_send_s(config: EmailConfig) -> float:
    """The longest `send` can take: every attempt timing out, every wait at its longest."""
    waits = sum(longest_retry_delay(n, config.backoff_s, math.inf) for n in range(1, config.attempts))
    return config.attempts * config.timeout_s + waits


async def send(message: EmailMessage, config: EmailConfig) -> None:
    """Deliver to the SMTP server, retrying up to `config.attempts` times; the last error is raised."""
    for attempt in range(1, config.attempts + 1):
        try:
            # aiosmtplib's timeout is per command: this one bounds the whole conversation.
            async with asyncio.timeout(config.timeout_s):
                await aiosmtplib.send(
                    message,
                    hostname=config.smtp_host,
                    port=config.smtp_port,
                    username=config.user or None,
                    password=config.password or None,
                    use_tls=config.security == "tls",
                    start_tls=config.security == "starttls",
                    cert_bundle=config.ca_file or None,
                    timeout=config.timeout_s,
                )
            return
        except SEND_ERRORS as exc:
            if attempt == config.attempts:
                raise
            delay = retry_delay(attempt, config.backoff_s, math.inf)
            log.warning(
                "report email not sent; trying again",
                extra={
                    "attempt": attempt,
                    "error": f"{type(exc).__name__}: {exc}",
                    "retry_in_s": round(delay, 2),
                    "smtp": f"{config.smtp_host}:{config.smtp_port}",
                },
            )
            await asyncio.sleep(delay)
