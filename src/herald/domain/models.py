"""Herald's entities as plain values."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, time


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# A message in these states may still be delivered; the others are final.
UNSENT = (MessageStatus.PENDING, MessageStatus.SENDING)


@dataclass(frozen=True)
class ClientFilter:
    """AND across fields, OR within one; an empty field does not restrict."""

    operator_codes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SendWindow:
    """Local time of day in [start, end); start > end means the window crosses midnight."""

    start: time
    end: time


@dataclass(frozen=True)
class Client:
    id: int
    phone: str
    operator_code: str
    tag: str | None
    timezone: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Mailing:
    id: int
    text: str
    start_at: datetime
    end_at: datetime
    filter: ClientFilter = field(default_factory=ClientFilter)
    send_window: SendWindow | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Message:
    id: int
    mailing_id: int
    client_id: int
    status: MessageStatus
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    due_at: datetime | None = None
