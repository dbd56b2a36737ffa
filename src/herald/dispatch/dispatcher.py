"""The dispatcher drains the outbox: claims due messages in batches, sends them concurrently, settles in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pymongo.errors import PyMongoError

from herald.clock import Clock
from herald.config import DispatchConfig
from herald.dispatch.sender import Sender
from herald.dispatch.slots import RateLimit, Slots
from herald.domain.backoff import retry_at, retry_delay
from herald.domain.breaker import AimdLimit, BreakerState, CircuitBreaker
from herald.domain.delivery import Hold, Send, Wait, decide
from herald.domain.filters import matches
from herald.domain.models import Client, Mailing, Message, MessageStatus
from herald.domain.outcome import Outcome, Verdict
from herald.logs import log_context
from herald.metrics import Metrics
from herald.store import Store
from herald.store.messages import Claim, Settle, Settlement

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 0.05
# Outcomes that say the API is overloaded: the adaptive limit shrinks on them.
OVERLOAD = frozenset({"timeout", "connection", "5xx", "429"})
AUTH_ALARM_EVERY_S = 10.0


class Dispatcher:
    def __init__(
        self,
        store: Store,
        sender: Sender,
        clock: Clock,
        config: DispatchConfig,
        metrics: Metrics,
        *,
        wakeup: asyncio.Event | None = None,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._sender = sender
        self._clock = clock
        self._config = config
        self._metrics = metrics
        self._wakeup = wakeup or asyncio.Event()
        self._rng = rng or random.Random()
        self._monotonic = monotonic
        self.breaker = CircuitBreaker(
            failures_to_open=config.breaker_failures,
            error_rate_to_open=config.breaker_error_rate,
            open_s=config.breaker_open_s,
            max_open_s=config.breaker_max_open_s,
            trials=config.breaker_trials,
        )
        self.limit = AimdLimit(
            minimum=min(config.min_concurrency, config.concurrency),
            maximum=config.concurrency,
            start=config.start_concurrency,
        )
        self._slots = Slots(lambda: self.limit.value)
        metrics.watch_dispatcher(self.status)
        self._rate = RateLimit(config.rate_limit_per_s, monotonic)
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()  # set whenever an in-flight send ends
        self._outcomes: list[Settlement] = []  # waiting to be written
        self._flush_soon = asyncio.Event()
        self._flushing = True
        # Claim token -> ids of its messages whose outcome is not yet written. What is open at shutdown is released.
        self._open_claims: dict[str, set[int]] = {}
        self._last_auth_alarm = float("-inf")
        # Mailing id -> the earliest end on which this worker expired its messages, to re-check after writing.
        self._recheck_ends: dict[int, datetime] = {}
        # Mailings whose messages this worker held because they were paused, to re-check after writing.
        self._recheck_holds: set[int] = set()

    def stop(self) -> None:
        """Stop claiming; run() then lets in-flight sends finish within the grace period and returns."""
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        flusher = asyncio.create_task(self._flush_loop(), name="dispatcher-flush")
        try:
            while not self._stopping.is_set():
                if len(self._inflight) >= self.limit.value:
                    self._room.clear()
                    await self._room.wait()
                    continue
                # While the breaker is open nothing is claimed: messages keep their attempts for better times.
                breaker_room = self.breaker.capacity(self._monotonic())
                if breaker_room == 0:
                    await self._idle()
                    continue
                # Claim ahead, up to twice the limit, so that sends never wait for the next claim.
                room = min(2 * self.limit.value - len(self._inflight), self._config.batch_size)
                try:
                    # The breaker's trials go to messages that have not failed yet, where there are any: messages
                    # that keep failing must not decide for everyone that the API is still down.
                    claim = await self._store.messages.claim(
                        room if breaker_room is None else min(room, breaker_room),
                        self._clock.now(),
                        self._config.lease_s,
                        unfailed_first=breaker_room is not None,
                    )
                    if claim is not None:
                        await self._start(claim)
                except PyMongoError:
                    log.exception("outbox unavailable; trying again shortly")
                    claim = None
                except Exception:
                    # A bug must not silently stop all delivery: say so loudly and keep going.
                    log.exception("dispatch round failed; trying again shortly")
                    claim = None
                if claim is None:
                    await self._idle()
        finally:
            await self._drain()
            # The flusher finishes the write it is in (cancelling it could lose outcomes), then one last flush.
            self._flushing = False
            self._flush_soon.set()
            await flusher
            await self._flush()
            await self._release_open_claims()

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), self._config.poll_s)
        self._wakeup.clear()

    async def _start(self, claim: Claim) -> None:
        """Look up what the batch needs in two queries, settle what need not be sent, start the sends."""
        messages = claim.messages
        self._open_claims[claim.token] = {m.id for m in messages}
        mailings = await self._store.mailings.by_ids({m.mailing_id for m in messages})
        clients = await self._store.clients.by_ids({m.client_id for m in messages})
        settle = Settle(claim.token)
        now = self._clock.now()
        log.debug("claimed messages", extra={"count": len(messages)})
        for message in messages:
            mailing, client = mailings.get(message.mailing_id), clients.get(message.client_id)
            if mailing is None or client is None or not matches(mailing.filter, client):
                self._settle(settle.final(message.id, MessageStatus.CANCELLED))
                continue
            decision = decide(mailing, ZoneInfo(client.timezone), now)
            if isinstance(decision, Send):
                task = asyncio.create_task(self._deliver(claim, settle, message, mailing, client, decision.deadline))
                self._inflight.add(task)
                task.add_done_callback(self._sent)
            elif isinstance(decision, Wait):
                self._settle(settle.wait(message.id, decision.until))
            elif isinstance(decision, Hold):
                self._settle(settle.hold(message.id, now))
            else:
                self._settle(settle.expired(message.id, mailing.end_at))

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._room.set()

    async def _deliver(
        self, claim: Claim, settle: Settle, message: Message, mailing: Mailing, client: Client, deadline: datetime
    ) -> None:
        with log_context(mailing_id=message.mailing_id, message_id=message.id, client_id=message.client_id):
            async with self._slots:
                now = self._clock.now()
                if now >= deadline:
                    settlement = settle.expired(message.id, mailing.end_at)
                elif now + timedelta(seconds=self._sender.timeout_s) >= claim.lease_until:
                    # The lease could run out mid-request and another worker send it too: give the message back
                    # to the outbox now, its attempt not counted (a no-op if another worker has it already).
                    log.warning("lease too short to send; message given back to the outbox")
                    settlement = settle.wait(message.id, now)
                elif not self.breaker.allow(self._monotonic()):
                    # The breaker opened while this message waited: back to the outbox, attempt not counted.
                    settlement = settle.wait(message.id, now)
                else:
                    await self._rate.wait()
                    outcome = await self._sender.send(message.id, client.phone, mailing.text, deadline)
                    self._observe(outcome, failed_before=message.last_error is not None)
                    settlement = self._after(settle, message, mailing, outcome)
            self._settle(settlement)

    def _after(self, settle: Settle, message: Message, mailing: Mailing, outcome: Outcome) -> Settlement:
        now = self._clock.now()
        if outcome.verdict is Verdict.SENT:
            return settle.sent(message.id)
        if outcome.verdict is Verdict.FAILED:
            log.warning("message failed", extra={"error": outcome.detail})
            return settle.final(message.id, MessageStatus.FAILED, outcome.detail)
        # A failure that opened the breaker, or met it open or half-open, is the API's, not the message's: its
        # attempt is given back, so that an outage, however long, fails no message (unsent at the end, it expires).
        api_down = self.breaker.state is not BreakerState.CLOSED
        if outcome.verdict is Verdict.AUTH:
            self._auth_alarm(outcome)
        elif message.attempts >= self._config.max_attempts and not api_down:
            log.warning("message failed: retries exhausted", extra={"attempts": message.attempts})
            return settle.final(
                message.id, MessageStatus.FAILED, f"gave up after {message.attempts} attempts: {outcome.detail}"
            )
        delay = retry_delay(message.attempts, self._config.backoff_base_s, self._config.backoff_cap_s, self._rng)
        due_at = retry_at(now, max(delay, outcome.retry_after_s or 0.0), mailing.end_at)
        if due_at >= mailing.end_at:
            log.info("message expired: the next attempt would be after the mailing's end")
            return settle.expired(message.id, mailing.end_at, outcome.detail)
        return settle.retry(message.id, due_at, outcome.detail, counted=not api_down)

    def _observe(self, outcome: Outcome, *, failed_before: bool) -> None:
        """Feed the breaker and the adaptive limit; a 4xx rejection means the API is up and answering."""
        now = self._monotonic()
        healthy = outcome.verdict in (Verdict.SENT, Verdict.FAILED)
        before = self.breaker.state
        after = self.breaker.record(not healthy, now, counts=not failed_before)
        if after is not before:
            if after is BreakerState.CLOSED:
                self.limit.restart()  # the API is back: start small, and grow while it answers well
            log.warning("circuit breaker %s", after, extra=self.status())
        if outcome.verdict is Verdict.SENT:
            self.limit.on_success()
        elif outcome.reason in OVERLOAD and self.limit.on_overload(now):
            log.info("concurrency limit lowered", extra=self.status())

    def status(self) -> dict[str, object]:
        """The breaker state and the concurrency limit, for logs and metrics."""
        return {
            "breaker": self.breaker.state.value,
            "concurrency_limit": self.limit.value,
            "in_flight": self._slots.used,
        }

    def _auth_alarm(self, outcome: Outcome) -> None:
        if time.monotonic() - self._last_auth_alarm >= AUTH_ALARM_EVERY_S:
            self._last_auth_alarm = time.monotonic()
            log.error(
                "the external API refuses Herald's token: check sender.token; messages wait and retry",
                extra={"error": outcome.detail},
            )

    def _settle(self, settlement: Settlement) -> None:
        self._metrics.settled(settlement.status)
        self._outcomes.append(settlement)
        if len(self._outcomes) >= self._config.batch_size:
            self._flush_soon.set()

    def _written(self, settlement: Settlement) -> None:
        open_ids = self._open_claims[settlement.token]
        open_ids.discard(settlement.message_id)
        if not open_ids:
            del self._open_claims[settlement.token]

    async def _flush_loop(self) -> None:
        while self._flushing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_soon.wait(), FLUSH_EVERY_S)
            self._flush_soon.clear()
            await self._flush()

    async def _flush(self) -> None:
        if self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                await self._store.messages.settle(batch, self._clock.now())
            except PyMongoError:
                log.exception("could not record outcomes; keeping them for the next flush", extra={"count": len(batch)})
                self._outcomes[:0] = batch
                return
            for settlement in batch:
                self._written(settlement)
                if settlement.expired_at_end is not None:
                    known = self._recheck_ends.get(settlement.mailing_id, settlement.expired_at_end)
                    self._recheck_ends[settlement.mailing_id] = min(known, settlement.expired_at_end)
                if settlement.held:
                    self._recheck_holds.add(settlement.mailing_id)
        await self._recheck_expiries()
        await self._recheck_held()

    async def _recheck_expiries(self) -> None:
        """An expiry decided on a mailing read before an edit moved its end later must not stand."""
        for mailing_id, end_at in list(self._recheck_ends.items()):
            with log_context(mailing_id=mailing_id):
                try:
                    if not await self._store.expiry_stands(mailing_id, end_at, self._clock.now()):
                        log.info("mailing end moved later; expired messages reopened")
                except PyMongoError:
                    log.exception("could not re-check a mailing's end; trying again at the next flush")
                    return
            del self._recheck_ends[mailing_id]

    async def _recheck_held(self) -> None:
        """A hold decided on a mailing read before it resumed must not stand."""
        for mailing_id in list(self._recheck_holds):
            try:
                await self._store.hold_stands(mailing_id)
            except PyMongoError:
                log.exception(
                    "could not re-check a paused mailing; trying again at the next flush",
                    extra={"mailing_id": mailing_id},
                )
                return
            self._recheck_holds.discard(mailing_id)

    async def _drain(self) -> None:
        """Let in-flight sends finish within the grace period; cancel the rest (their leases are released)."""
        if self._inflight:
            log.info("dispatcher stopping: waiting for in-flight sends", extra={"in_flight": len(self._inflight)})
            _, late = await asyncio.wait(set(self._inflight), timeout=self._config.grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._flush()

    async def _release_open_claims(self) -> None:
        if not self._open_claims:
            return
        try:
            released = await self._store.messages.release(self._open_claims, self._clock.now())
        except PyMongoError:
            log.exception("could not release claimed messages; their leases will expire instead")
            return
        log.info("released claimed messages back to the outbox", extra={"released": released})
        self._open_claims.clear()
