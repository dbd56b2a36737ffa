"""A failing external API is given room instead of a stream of doomed requests, and Herald recovers with it."""

import asyncio
import time
from datetime import timedelta

from herald.app_keys import dispatcher_key
from herald.domain.breaker import BreakerState
from herald.store.messages import message_id
from tests.helpers import add_mailing, counts, eventually, insert_clients, wait_counts

FAST_BREAKER = {
    "breaker_failures": 5,
    "breaker_open_s": 0.3,
    "breaker_max_open_s": 0.6,
    "backoff_cap_s": 1.0,
    "breaker_trials": 2,
}


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
    assert probes <= 12  # two trials per pause (0.3 s, doubling to 0.6 s) over two seconds
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
    api = await start_herald(
        dispatch={
            "concurrency": 16,
            "start_concurrency": 16,
            "breaker_failures": 1000,
            "breaker_error_rate": 1.0,
            "backoff_cap_s": 1.0,
        }
    )
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


async def test_few_requests_reach_an_api_that_is_down_when_a_worker_starts(start_herald, db, probe):
    await insert_clients(db, 300)
    probe.state.faults.update({"outage": True})
    api = await start_herald(dispatch={"breaker_open_s": 30.0})  # config.yaml's concurrency: 200
    dispatcher = api.server.app[dispatcher_key]
    await add_mailing(api)
    await eventually(lambda: _breaker_is(dispatcher, BreakerState.OPEN))
    await asyncio.sleep(0.3)  # whatever was still in flight arrives
    assert probe.state.ledger.requests <= 20  # slow start: ten in flight at first, not two hundred


async def test_messages_that_keep_failing_neither_hold_the_breaker_open_nor_wait_for_it(
    start_herald, db, store, probe, clock
):
    await insert_clients(db, 40)
    api = await start_herald(
        sender={"timeout_s": 0.3},
        dispatch={"breaker_open_s": 0.5, "breaker_max_open_s": 30.0, "backoff_base_s": 1.0, "backoff_cap_s": 4.0},
    )
    dispatcher = api.server.app[dispatcher_key]
    # A slow spell: every request is held past Herald's timeout, and the breaker opens.
    probe.state.faults.update({"latency_ms": 1000})
    slow = await add_mailing(api)
    await eventually(lambda: _breaker_is(dispatcher, BreakerState.OPEN))
    assert (await api.delete(f"/api/v1/mailings/{slow['id']}")).status == 204
    probe.state.faults.update({"latency_ms": 0})

    # Then a mailing where a few messages fail, each its own way, among healthy ones.
    start = clock.now() + timedelta(minutes=1)
    mailing = await add_mailing(api, start_at=start.isoformat())
    scripts = {
        **{c: [{"fault": "500", "count": 2}] for c in (1, 2, 3)},
        **{c: [{"fault": "malformed"}] for c in (4, 5, 6)},
        **{c: [{"fault": "429"}] for c in (7, 8, 9)},
        **{c: [{"fault": "400"}] for c in (10, 11)},
    }
    probe.state.faults.update({"messages": {str(message_id(mailing["id"], c)): steps for c, steps in scripts.items()}})
    clock.set(start)
    started = time.monotonic()
    # The healthy ones go out once the breaker's pause is over and its trials pass, whatever the others do.
    await eventually(lambda: _sent_to(store, mailing["id"], range(12, 41)), timeout=10)
    assert time.monotonic() - started < 5  # not breaker_max_open_s (30 s)
    # The failing ones each wait out their own backoff (the clock moves a second at a time), no more.
    for _ in range(12):
        clock.advance(1)
        await asyncio.sleep(0.1)
    await wait_counts(store, mailing["id"], {"sent": 38, "failed": 2})
    messages = await store.messages.page(limit=100, mailing_id=mailing["id"])
    assert max(m.sent_at for m in messages if m.sent_at) <= start + timedelta(seconds=12)
    assert dispatcher.breaker.state is BreakerState.CLOSED


async def _sent_to(store, mailing_id: int, client_ids: range) -> bool:
    sent = {m.client_id for m in await store.messages.page(limit=100, mailing_id=mailing_id, status="sent")}
    return sent >= set(client_ids)


async def _breaker_is(dispatcher, state: BreakerState) -> bool:
    dispatcher.breaker.capacity(time.monotonic())  # lets an open breaker whose pause is over turn half-open
    return dispatcher.breaker.state is state


async def _limit_below(dispatcher, value: int) -> bool:
    return dispatcher.limit.value < value
