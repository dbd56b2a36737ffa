"""Operations fixtures: a real SMTP server on loopback (aiosmtpd), and scraping /metrics."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client.parser import text_string_to_metric_families

from herald.config import Config
from herald.localdb import free_port

RECIPIENTS = ("ops@example.com", "lead@example.com")


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what arrives; it can refuse the next few messages with a 4xx, as a server
    under strain does."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse_next: int = 0
    refused: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse_next:
            self.refuse_next -= 1
            self.refused += 1
            return "451 4.3.0 Try again later"
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield SmtpServer(controller.port, mailbox)
    controller.stop()


@pytest.fixture
def email_config(config: Config, smtp: SmtpServer) -> Config:
    """Herald with the daily email on, sent at 08:00 UTC to the loopback SMTP server, retrying quickly."""
    return config.replace(
        email={
            "enabled": True,
            "send_at": "08:00",
            "timezone": "UTC",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "security": "none",
            "recipients": ", ".join(RECIPIENTS),
            "sender": "herald@example.com",
            "timeout_s": 5.0,
            "attempts": 3,
            "backoff_s": 0.01,
        }
    )


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: TestClient) -> Samples:
    """GET /metrics, parsed by prometheus-client's own parser: sample name and labels -> value."""
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: Any) -> float:
    """One sample's value; 0 for a labelled counter that has not been touched yet."""
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)


async def scraped(client: TestClient, name: str, **labels: Any) -> float:
    """One sample's value, scraped now."""
    return value(await scrape(client), name, **labels)
