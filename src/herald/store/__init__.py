"""Persistence: one module per collection; handlers and workers never touch collections directly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from herald.store.clients import ClientStore
from herald.store.db import Database
from herald.store.idempotency import IdempotencyStore
from herald.store.imports import ImportStore
from herald.store.mailings import MailingStore
from herald.store.messages import MessageStore
from herald.store.reports import ReportStore
from herald.store.stats import StatsStore


@dataclass(frozen=True)
class Store:
    clients: ClientStore
    mailings: MailingStore
    messages: MessageStore
    stats: StatsStore
    reports: ReportStore
    imports: ImportStore
    idempotency: IdempotencyStore

    @classmethod
    def over(cls, db: Database, *, stats_max_age_s: float = 0.0) -> Store:
        return cls(
            ClientStore(db),
            MailingStore(db),
            MessageStore(db),
            StatsStore(db, max_age_s=stats_max_age_s),
            ReportStore(db),
            ImportStore(db),
            IdempotencyStore(db),
        )

    async def expiry_stands(self, mailing_id: int, decided_end: datetime, now: datetime) -> bool:
        """True if the mailing still ends by `decided_end`, the end an expiry was decided on; if an edit moved it
        later, the mailing's expired messages are reopened.

        Whoever expires messages asks this after writing: an edit writes the new end and then reopens what it
        sees expired, so an expiry decided on the old end is undone by one side or the other, whatever the order.
        """
        if await self.mailings.ends_by(mailing_id, decided_end):
            return True
        await self.messages.reopen_expired(mailing_id, now, held=await self.mailings.is_paused(mailing_id))
        return False

    async def hold_stands(self, mailing_id: int) -> bool:
        """True if the mailing is still paused; if it resumed meanwhile, its held messages are released.

        Whoever holds messages asks this after writing: a resumption writes the mailing first and then releases
        what it sees held, so a hold decided on the paused mailing is undone by one side or the other.
        """
        if await self.mailings.is_paused(mailing_id):
            return True
        await self.messages.release_held(mailing_id)
        return False
