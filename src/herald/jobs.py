"""Scheduled housekeeping, run by APScheduler in the worker processes; each job is a plain function of its inputs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from herald.app_keys import clock_key, store_key
from herald.clock import Clock
from herald.store import Store

log = logging.getLogger(__name__)

# Claim keys only matter while a worker could still act on what it read before a key was taken: far less than
# an hour. Sweeping keeps the collection small (MongoDB could use a TTL index; FerretDB 1.x has none).
CLAIM_KEY_RETENTION = timedelta(hours=1)
SWEEP_EVERY = timedelta(minutes=10)


async def sweep_claim_keys(store: Store, clock: Clock) -> int:
    swept = await store.messages.sweep_claim_keys(clock.now() - CLAIM_KEY_RETENTION)
    log.info("swept old claim keys", extra={"count": swept})
    return swept


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        sweep_claim_keys, "interval", seconds=SWEEP_EVERY.total_seconds(), id="sweep_claim_keys",
        kwargs={"store": app[store_key], "clock": app[clock_key]}, coalesce=True, max_instances=1,
    )
    scheduler.start()
    yield
    scheduler.shutdown(wait=False)
