"""Use cases that span collections: what happens to the outbox when clients and mailings change."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from herald.clock import Clock
from herald.dispatch.sender import Sender
from herald.domain.filters import matches
from herald.domain.models import Client, ImportCounts, Mailing
from herald.domain.outcome import Outcome
from herald.domain.windows import window_opening
from herald.errors import Conflict, Invalid
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
            await self._sync_running_mailings(joining=[client])
        return client

    async def update_client(self, client_id: int, changes: Mapping[str, Any]) -> Client:
        with log_context(client_id=client_id):
            client = await self.store.clients.update(client_id, changes, self._clock.now())
            log.info("client updated", extra={"fields": sorted(changes)})
            await self._sync_running_mailings(changed=[client])
        return client

    async def import_clients(self, rows: Sequence[Mapping[str, Any]], *, upsert: bool) -> ImportCounts:
        """Write a batch of valid client rows: new phones are created; a phone that exists is updated (`upsert`) or
        skipped. Rows run as if one after another: a phone twice in a batch is created, then updated or skipped.
        The clients join and leave running mailings as one."""
        now = self._clock.now()
        firsts: dict[str, Mapping[str, Any]] = {}
        repeats = [row for row in rows if firsts.setdefault(row["phone"], row) is not row]
        existing = await self.store.clients.by_phones(firsts)
        new = [row for phone, row in firsts.items() if phone not in existing]
        created, taken = await self.store.clients.insert_batch(new, now)
        if taken:
            # Another writer created some of these phones meanwhile: they exist. A row refused for its id alone
            # (written past the sequence by someone else) is inserted again under a new one.
            found = await self.store.clients.by_phones(new[i]["phone"] for i in taken)
            existing |= found
            created += [await self.store.clients.create(new[i], now) for i in taken if new[i]["phone"] not in found]
        if upsert:
            changes = [
                (client, change) for phone, client in existing.items() if (change := _changes(client, firsts[phone]))
            ]
            changed = await self.store.clients.update_batch(changes, now)
        else:
            changed = []
        await self._sync_running_mailings(joining=created, changed=changed)
        counts = ImportCounts(created=len(created), updated=len(changed), skipped=0 if upsert else len(existing))
        if repeats:
            counts = counts.plus(await self.import_clients(repeats, upsert=upsert))
        return counts

    async def delete_client(self, client_id: int) -> None:
        with log_context(client_id=client_id):
            await self.store.clients.delete(client_id)
            cancelled = await self.store.messages.cancel_pending(client_id=client_id)
            log.info("client deleted", extra={"cancelled": cancelled})

    async def _sync_running_mailings(self, *, joining: Sequence[Client] = (), changed: Sequence[Client] = ()) -> None:
        """New clients (`joining`) join every running mailing they match; `changed` ones join those they now match
        and leave those they no longer do."""
        if not joining and not changed:
            return
        now = self._clock.now()
        joined, leaving = 0, []
        for mailing in await self.store.mailings.running(now):
            with log_context(mailing_id=mailing.id):
                due = [
                    (client.id, window_opening(mailing.send_window, ZoneInfo(client.timezone), now))
                    for client in (*joining, *changed)
                    if matches(mailing.filter, client)
                ]
                if due:
                    joined += await self.store.messages.insert_planned(mailing.id, due, now, held=mailing.paused)
                    log.info("clients match a running mailing", extra={"count": len(due)})
                    if mailing.paused:
                        await self.store.hold_stands(mailing.id)
                leaving += [
                    message_id(mailing.id, client.id) for client in changed if not matches(mailing.filter, client)
                ]
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
                reopened = await self.store.messages.reopen_expired(mailing.id, now, held=mailing.paused)
                if mailing.paused:
                    await self.store.hold_stands(mailing.id)
                if reopened:
                    log.info(
                        "mailing end moved later: expired messages are pending again", extra={"reopened": reopened}
                    )
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

    async def pause_mailing(self, mailing_id: int) -> Mailing:
        """No message of the mailing is claimed until it resumes; those in flight finish. Its end still holds."""
        with log_context(mailing_id=mailing_id):
            mailing, now = await self._not_ended(mailing_id, "there is nothing to pause")
            mailing, changed = await self.store.mailings.set_paused(mailing_id, now, now)
            if changed:
                held = await self.store.messages.hold(mailing_id)
                await self.store.hold_stands(mailing_id)
                log.info("mailing paused", extra={"held": held})
        return mailing

    async def _not_ended(self, mailing_id: int, otherwise: str) -> tuple[Mailing, datetime]:
        """The mailing and the time now, if it has not ended; a Conflict saying `otherwise` if it has."""
        now = self._clock.now()
        mailing = await self.store.mailings.get(mailing_id)
        if now >= mailing.end_at:
            raise Conflict(f"mailing {mailing_id} has ended: {otherwise}")
        return mailing, now

    async def resume_mailing(self, mailing_id: int) -> Mailing:
        with log_context(mailing_id=mailing_id):
            mailing, changed = await self.store.mailings.set_paused(mailing_id, None, self._clock.now())
            if changed:
                released = await self.store.messages.release_held(mailing_id)
                log.info("mailing resumed", extra={"released": released})
                self._wakeups.dispatcher.set()
        return mailing

    async def retry_failed(self, mailing_id: int) -> int:
        """The mailing's failed messages go back to the outbox with a fresh budget of attempts; returns how many."""
        with log_context(mailing_id=mailing_id):
            mailing, now = await self._not_ended(mailing_id, "its messages can no longer be sent")
            retried = await self.store.messages.retry_failed(mailing_id, now, held=mailing.paused)
            if mailing.paused:
                await self.store.hold_stands(mailing_id)
            log.info("failed messages retried", extra={"retried": retried})
        self._wakeups.dispatcher.set()
        return retried

    async def test_send(self, mailing_id: int, phone: str, sender: Sender) -> tuple[Outcome, int]:
        """Send the mailing's text to one phone now, as a test: no message of the mailing, no statistics, a msgId
        of its own that no message's can equal. Returns the outcome and the msgId."""
        with log_context(mailing_id=mailing_id):
            mailing = await self.store.mailings.get(mailing_id)
            test_id = await self.store.messages.test_send_id()
            with log_context(message_id=test_id):
                now = self._clock.now()
                outcome = await sender.send(test_id, phone, mailing.text, now + timedelta(seconds=sender.timeout_s))
                log.info("test send", extra={"outcome": outcome.reason, "phone": phone})
        return outcome, test_id

    async def delete_mailing(self, mailing_id: int) -> None:
        with log_context(mailing_id=mailing_id):
            await self.store.mailings.delete(mailing_id, self._clock.now())
            cancelled = await self.store.messages.cancel_pending(mailing_id=mailing_id)
            log.info("mailing deleted", extra={"cancelled": cancelled})


def _changes(client: Client, row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an imported row that differ from the stored client."""
    return {key: value for key, value in row.items() if getattr(client, key) != value}
