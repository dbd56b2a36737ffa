"""A failing external API is given room instead of a stream of doomed requests, and Herald recovers with it."""

import asyncio
import time

from herald.app_keys import dispatcher_key
from herald.domain.breaker import BreakerState
from tests.helpers import add_mailing, counts, eventually, insert_clients, wait_counts

FAST_BREAKER = {"breaker_failures": 5, "breaker_open_s": 0.3, "breaker_max_open_s": 0.6, "backoff_cap_s": 1.0}


async def test_a_dead_api_gets_only_probes_and_messages_keep_their_attempts(start_herald, db, store, probe, clock):
    await insert_clients(db, 40)
    probe.state.faults.update({"outage": True})
    api = await start_herald(dispatch={"concurrency": 4, **FAST_BREAKER})
    dispatcher = api.server.app[dispatcher_key]
    mailing = await add_mailing(api)
    await eventually(lambda: _breaker_is(dispatcher, BreakerState.OPEN))
    opened_after = probe.state.ledger.requests
    for _ in range(20):  # two seconds of outage, with the clock moving so that every retry comes due
        clock.advance(2)
        await asyncio.sleep(0.1)
    probes = probe.state.ledger.requests - opened_after
    assert opened_after <= 5 + 4  # the run that opened it, plus what was already in flight
    assert probes <= 6  # about one probe per pause (0.3 s, doubling to 0.6 s) over two seconds
    messages = await store.messages.page(limit=100, mailing_id=mailing["id"])
    assert max(m.attempts for m in messages) <= 3 and "failed" not in await counts(store, mailing["id"])

    probe.state.faults.update({"outage": False})
    await eventually(lambda: _breaker_is(dispatcher, BreakerState.CLOSED), timeout=5)
    for _ in range(10):
        clock.advance(2)
        await asyncio.sleep(0.05)
    await wait_counts(store, mailing["id"], {"sent": 40})
    assert len(probe.accepted()) == 40


async def test_overload_shrinks_concurrency_and_recovery_grows_it_back(start_herald, db, store, probe, clock):
    await insert_clients(db, 200)
    api = await start_herald(dispatch={"concurrency": 16, "breaker_failures": 1000, "breaker_error_rate": 1.0,
                                       "backoff_cap_s": 1.0})
    dispatcher = api.server.app[dispatcher_key]
    probe.fail_next("503", 30)
    mailing = await add_mailing(api)
    await eventually(lambda: _limit_below(dispatcher, 16))
    lowest = dispatcher.limit.value
    assert lowest <= 8
    for _ in range(30):
        clock.advance(2)
        await asyncio.sleep(0.05)
    await wait_counts(store, mailing["id"], {"sent": 200}, timeout=20)
    assert dispatcher.limit.value > lowest  # grew back with the successes


async def _breaker_is(dispatcher, state: BreakerState) -> bool:
    dispatcher.breaker.capacity(time.monotonic())  # lets an open breaker whose pause is over turn half-open
    return dispatcher.breaker.state is state


async def _limit_below(dispatcher, value: int) -> bool:
    return dispatcher.limit.value < value
