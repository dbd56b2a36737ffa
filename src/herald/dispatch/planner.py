"""The planner turns started mailings into messages, and closes ended ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from zoneinfo import ZoneInfo

from pymongo.errors import PyMongoError

from herald.clock import Clock
from herald.config import PlannerConfig
from herald.domain.models import Mailing
from herald.domain.windows import window_opening
from herald.logs import log_context
from herald.metrics import Metrics
from herald.store import Store

log = logging.getLogger(__name__)


class Planner:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        config: PlannerConfig,
        metrics: Metrics,
        *,
        wakeup: asyncio.Event | None = None,
        dispatcher_wakeup: asyncio.Event | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._config = config
        self._metrics = metrics
        self._wakeup = wakeup or asyncio.Event()
        self._dispatcher_wakeup = dispatcher_wakeup or asyncio.Event()
        self._owner = f"planner-{uuid.uuid4().hex[:12]}"
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    busy = await self.tick()
                except PyMongoError:
                    log.exception("planner cannot reach the database; trying again shortly")
                    busy = False
                except Exception:
                    # A bug must not silently stop all planning: say so loudly and keep going.
                    log.exception("planner round failed; trying again shortly")
                    busy = False
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), self._config.poll_s)
                    self._wakeup.clear()
        finally:
            try:
                await self._store.mailings.release_planning(self._owner)
            except PyMongoError:
                log.exception("could not release planning leases; they will expire instead")

    async def tick(self) -> bool:
        """One round of work; True if there was something to do (so the next round should come at once)."""
        closed = await self.close_ended()
        claimed = await self._store.mailings.claim_planning(self._owner, self._clock.now(), self._config.lease_s)
        if claimed is None:
            return closed > 0
        mailing, cursor = claimed
        with log_context(mailing_id=mailing.id):
            await self.plan(mailing, cursor)
        return True

    async def plan(self, mailing: Mailing, cursor: int) -> None:
        """Stream the audience in id order from `cursor`, writing messages batch by batch; resumable anywhere."""
        log.info("planning started", extra={"from_client_id": cursor})
        created = 0
        while not self._stopping.is_set():
            batch = await self._store.clients.audience_batch(
                mailing.filter, after=cursor, limit=self._config.batch_size
            )
            if not batch:
                if await self._store.mailings.finish_planning(mailing.id, self._owner, self._clock.now()):
                    self._metrics.planned_mailings.inc()
                    log.info("planning finished", extra={"messages_created": created})
                return
            now = self._clock.now()
            start = max(now, mailing.start_at)
            due = [(client_id, window_opening(mailing.send_window, ZoneInfo(tz), start)) for client_id, tz in batch]
            inserted = await self._store.messages.insert_planned(mailing.id, due, now, held=mailing.paused)
            if mailing.paused:
                await self._store.hold_stands(mailing.id)
            self._metrics.planned_messages.inc(inserted)
            created += inserted
            cursor = batch[-1][0]
            self._dispatcher_wakeup.set()
            if not await self._store.mailings.save_plan_progress(
                mailing.id, self._owner, cursor, self._clock.now(), self._config.lease_s
            ):
                log.info("planning handed over: the mailing changed or another worker took it")
                return

    async def close_ended(self) -> int:
        """Expire what was not delivered by a mailing's end; returns how many mailings were closed."""
        now = self._clock.now()
        ended = await self._store.mailings.ended_unclosed(now)
        closed = 0
        for mailing_id in ended:
            with log_context(mailing_id=mailing_id):
                if not await self._store.mailings.mark_closed(mailing_id, now):
                    continue  # its end was moved later since we looked
                closed += 1
                expired = await self._store.messages.expire_pending(mailing_id)
                if not await self._store.expiry_stands(mailing_id, now, self._clock.now()):
                    log.info("mailing end moved during closing; expired messages reopened")
                    continue
                self._metrics.mailing_closed(expired)
                log.info("mailing ended", extra={"expired": expired})
        return closed
