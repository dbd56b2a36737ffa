"""Persistence: one module per collection; handlers and workers never touch collections directly."""

from __future__ import annotations

from dataclasses import dataclass

from herald.store.clients import ClientStore
from herald.store.db import Database
from herald.store.mailings import MailingStore
from herald.store.messages import MessageStore
from herald.store.stats import StatsStore


@dataclass(frozen=True)
class Store:
    clients: ClientStore
    mailings: MailingStore
    messages: MessageStore
    stats: StatsStore

    @classmethod
    def over(cls, db: Database) -> Store:
        return cls(ClientStore(db), MailingStore(db), MessageStore(db), StatsStore(db))
