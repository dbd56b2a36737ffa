import asyncio

from pymongo import AsyncMongoClient

from herald.domain.models import MessageStatus
from herald.store import Store
from herald.store.messages import MessageStore, Settle
from herald.store.stats import StatsStore
from tests.helpers import T0, CommandRecorder


async def test_counts_by_mailing_and_status_come_from_the_database(store: Store):
    await store.messages.insert_planned(1, [(c, T0) for c in range(1, 6)], T0)
    claim = await store.messages.claim(3, T0, lease_s=60)
    await store.messages.insert_planned(2, [(c, T0) for c in range(1, 3)], T0)
    assert claim
    settle = Settle(claim.token)
    await store.messages.settle(
        [
            settle.sent(claim.messages[0].id),
            settle.final(claim.messages[1].id, MessageStatus.FAILED, "HTTP 400"),
        ],
        T0,
    )
    counts = await store.stats.by_mailing([1, 2, 3])
    assert counts[1] == {"pending": 2, "sending": 1, "sent": 1, "failed": 1, "expired": 0, "cancelled": 0}
    assert counts[2]["pending"] == 2 and sum(counts[2].values()) == 2
    assert sum(counts[3].values()) == 0
    overall = await store.stats.overall()
    assert overall == {"pending": 4, "sending": 1, "sent": 1, "failed": 1, "expired": 0, "cancelled": 0}


async def test_recent_counts_are_shared_until_they_are_too_old(db):
    ticks = [0.0]
    stats = StatsStore(db, max_age_s=1.0, monotonic=lambda: ticks[0])
    messages = MessageStore(db)
    await messages.insert_planned(1, [(1, T0)], T0)
    first, overall = await asyncio.gather(stats.by_mailing([1]), stats.overall())
    await messages.insert_planned(1, [(2, T0)], T0)
    ticks[0] = 1.0
    assert (await stats.by_mailing([1]))[1]["pending"] == first[1]["pending"] == 1  # counted a second ago
    assert (await stats.overall())["pending"] == overall["pending"] == 1
    ticks[0] = 1.5
    assert (await stats.by_mailing([1]))[1]["pending"] == 2
    assert (await stats.overall())["pending"] == 2


async def test_readers_asking_at_once_share_one_count(db_url):
    recorder = CommandRecorder({"aggregate"})
    client = AsyncMongoClient(db_url, tz_aware=True, event_listeners=[recorder])
    try:
        stats = StatsStore(client.get_default_database(), max_age_s=1.0)
        await asyncio.gather(*(stats.by_mailing([1, 2, 3, 7]) for _ in range(10)), stats.overall(), stats.overall())
    finally:
        await client.close()
    ranges = sorted(str(command["pipeline"][0]["$match"]["mailing_id"]) for command in recorder.commands)
    assert ranges == ["{'$gte': 0}", "{'$gte': 1, '$lte': 3}", "{'$gte': 7, '$lte': 7}"]
