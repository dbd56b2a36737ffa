"""Use cases that span collections: what happens to the outbox when clients and mailings change."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from herald.clock import Clock
from herald.domain.filters import matches
from herald.domain.models import Client, Mailing
from herald.domain.windows import window_opening
from herald.errors import Invalid
from herald.logs import log_context
from herald.store import Store
from herald.store.messages import message_id

log = logging.getLogger(__name__)


@dataclass
class Wakeups:
    """Nudges for the in-process workers, so that new work starts now rather than at the next poll."""

    planner: asyncio.Event = field(default_factory=asyncio.Event)
    dispatcher: asyncio.Event = field(default_factory=asyncio.Event)


class Service:
    def __init__(self, store: Store, clock: Clock, wakeups: Wakeups, *, batch_size: int = 1000) -> None:
        self.store = store
        self._clock = clock
        self._wakeups = wakeups
        self._batch_size = batch_size

    # Clients

    async def create_client(self, fields: Mapping[str, Any]) -> Client:
        client = await self.store.clients.create(fields, self._clock.now())
        with log_context(client_id=client.id):
            log.info("client created", extra={"operator_code": client.operator_code, "tag": client.tag})
            await self._sync_running_mailings(client)
        return client

    async def update_client(self, client_id: int, changes: Mapping[str, Any]) -> Client:
        with log_context(client_id=client_id):
            client = await self.store.clients.update(client_id, changes, self._clock.now())
            log.info("client updated", extra={"fields": sorted(changes)})
            await self._sync_running_mailings(client)
        return client

    async def delete_client(self, client_id: int) -> None:
        with log_context(client_id=client_id):
            await self.store.clients.delete(client_id)
            cancelled = await self.store.messages.cancel_pending(client_id=client_id)
            log.info("client deleted", extra={"cancelled": cancelled})

    async def _sync_running_mailings(self, client: Client) -> None:
        """A client joins every running mailing it now matches and leaves the ones it no longer does."""
        now = self._clock.now()
        joined, leaving = 0, []
        for mailing in await self.store.mailings.running(now):
            with log_context(mailing_id=mailing.id):
                if matches(mailing.filter, client):
                    due = window_opening(mailing.send_window, ZoneInfo(client.timezone), now)
                    joined += await self.store.messages.insert_planned(mailing.id, [(client.id, due)], now)
                    log.info("client matches a running mailing")
                else:
                    leaving.append(message_id(mailing.id, client.id))
        if leaving:
            await self.store.messages.cancel_pending(ids=leaving)
        if joined:
            self._wakeups.dispatcher.set()

    # Mailings

    async def create_mailing(self, fields: Mapping[str, Any]) -> Mailing:
        mailing = await self.store.mailings.create(fields, self._clock.now())
        with log_context(mailing_id=mailing.id):
            log.info("mailing created", extra={"start_at": mailing.start_at, "end_at": mailing.end_at})
        self._wakeups.planner.set()
        return mailing

    async def update_mailing(self, mailing_id: int, changes: Mapping[str, Any]) -> Mailing:
        with log_context(mailing_id=mailing_id):
            current = await self.store.mailings.get(mailing_id)
            start_at = changes.get("start_at", current.start_at)
            end_at = changes.get("end_at", current.end_at)
            if end_at <= start_at:
                raise Invalid("end_at must be after start_at", end_at=["Must be after start_at."])
            refilter = "filter" in changes and changes["filter"] != current.filter
            mailing = await self.store.mailings.update(current, changes, self._clock.now(), replan=refilter)
            log.info("mailing updated", extra={"fields": sorted(changes)})
            now = self._clock.now()
            if refilter:
                await self._cancel_unmatched(mailing)
            if "end_at" in changes and mailing.end_at > now:
                reopened = await self.store.messages.reopen_expired(mailing.id, now)
                if reopened:
                    log.info("mailing end moved later: expired messages are pending again",
                             extra={"reopened": reopened})
        self._wakeups.planner.set()
        self._wakeups.dispatcher.set()
        return mailing

    async def _cancel_unmatched(self, mailing: Mailing) -> None:
        """After a filter change, pending messages of clients outside the new audience are cancelled."""
        after, cancelled = 0, 0
        while batch := await self.store.messages.pending_batch(mailing.id, after=after, limit=self._batch_size):
            clients = await self.store.clients.by_ids(client_id for _, client_id in batch)
            leaving = [mid for mid, cid in batch if cid not in clients or not matches(mailing.filter, clients[cid])]
            if leaving:
                cancelled += await self.store.messages.cancel_pending(ids=leaving)
            after = batch[-1][0]
        log.info("filter changed", extra={"cancelled": cancelled})

    async def delete_mailing(self, mailing_id: int) -> None:
        with log_context(mailing_id=mailing_id):
            await self.store.mailings.delete(mailing_id, self._clock.now())
            cancelled = await self.store.messages.cancel_pending(mailing_id=mailing_id)
            log.info("mailing deleted", extra={"cancelled": cancelled})
