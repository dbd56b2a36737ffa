"""Herald's entities as plain values."""

from __future__ import annotations

import enum
from dataclasses import astuple, dataclass, field
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
    paused_at: datetime | None = None  # while set, its messages are held: none is claimed

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


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


class ImportStatus(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class ImportCounts:
    processed: int = 0  # data lines read
    created: int = 0
    updated: int = 0
    skipped: int = 0  # a phone that exists already, with mode insert
    failed: int = 0  # lines refused, each with its errors

    def plus(self, other: ImportCounts) -> ImportCounts:
        return ImportCounts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class ClientImport:
    id: int
    status: ImportStatus
    mode: str
    format: str
    lines: int  # data lines in the file
    counts: ImportCounts
    errors: list[dict[str, object]]  # the first ones, {"line": n, "errors": {field: [message]}}
    line: int  # the last line read
    created_at: datetime
    updated_at: datetime
    detail: str | None = None  # why it failed, if it did
