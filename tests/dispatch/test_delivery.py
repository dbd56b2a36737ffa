"""Delivery end to end: Herald with every role, the emulator on loopback, one fake clock for both."""

import asyncio
from datetime import datetime, timedelta

from herald.domain.models import MessageStatus
from herald.store.messages import message_id
from tests.helpers import T0, add_clients, add_mailing, eventually, insert_clients, wait_counts


async def test_a_started_mailing_reaches_every_matching_client_once(api, store, probe):
    vip = await add_clients(api, 3, tag="vip")
    await add_clients(api, 2, start=10, tag="other")
    await add_clients(api, 1, start=20, tag="vip", operator_code="999")
    mailing = await add_mailing(api, text="Sale!", filter={"tags": ["vip"], "operator_codes": ["900"]})

    await wait_counts(store, mailing["id"], {"sent": 3})
    expected = {message_id(mailing["id"], c["id"]): c for c in vip}
    assert probe.accepted() == dict.fromkeys(expected, 1)
    for msg_id, client in expected.items():
        assert probe.state.ledger.bodies[msg_id] == {"id": msg_id, "phone": int(client["phone"]), "text": "Sale!"}
    messages = await store.messages.page(limit=10, mailing_id=mailing["id"])
    assert all(m.sent_at == T0 and m.attempts == 1 and m.last_error is None for m in messages)


async def test_a_future_mailing_starts_by_itself_when_its_time_comes(api, store, probe, clock):
    await add_clients(api, 2)
    mailing = await add_mailing(api, start_at="2026-06-01T13:00:00Z", end_at="2026-06-01T14:00:00Z")
    await wait_counts(store, mailing["id"], {}, timeout=0.3)
    assert probe.state.ledger.requests == 0
    clock.set(datetime.fromisoformat("2026-06-01T13:00:00+00:00"))
    await wait_counts(store, mailing["id"], {"sent": 2})


async def test_nothing_is_sent_at_or_after_the_end_and_the_rest_expires(api, store, probe, clock):
    await add_clients(api, 3)
    probe.state.faults.update({"outage": True})
    mailing = await add_mailing(api, end_at="2026-06-01T12:10:00Z")
    end = datetime.fromisoformat(mailing["end_at"])
    await eventually(lambda: _requests_seen(probe, 3))
    for _ in range(8):  # retries keep failing while the clock runs out
        clock.advance(75)
        await _settle_briefly()
    await wait_counts(store, mailing["id"], {"expired": 3})
    assert probe.requests_at_or_after(end) == 0
    probe.state.faults.update({"outage": False})
    clock.advance(3600)
    await _settle_briefly()
    assert probe.requests_at_or_after(end) == 0 and probe.accepted() == {}


async def test_retryable_failures_are_retried_with_backoff_until_sent(api, store, probe, clock):
    (client,) = await add_clients(api, 1)
    probe.fail_next("500")
    probe.fail_next("malformed")
    probe.fail_next("drop")
    mailing = await add_mailing(api)
    msg_id = message_id(mailing["id"], client["id"])
    for attempts in (1, 2):
        await eventually(lambda attempts=attempts: _attempted(store, msg_id, attempts, MessageStatus.PENDING))
        (message,) = await store.messages.page(limit=1, mailing_id=mailing["id"])
        step = 2 ** (attempts - 1)  # backoff_base_s is 1 in tests: half a step to a full step
        assert step / 2 - 0.001 <= (message.due_at - clock.now()).total_seconds() <= step
        clock.advance(step)
    # The third attempt meets a dropped connection, which the quick in-call retry gets past.
    await wait_counts(store, mailing["id"], {"sent": 1})
    (message,) = await store.messages.page(limit=1, mailing_id=mailing["id"])
    assert message.attempts == 3 and probe.accepted() == {msg_id: 1}
    assert [outcome for _, _, outcome in probe.state.ledger.arrivals] == ["500", "malformed", "drop", "ok"]


async def test_throttling_waits_at_least_retry_after(api, store, probe, clock):
    (client,) = await add_clients(api, 1)
    probe.state.faults.update({"retry_after_s": 30})
    probe.fail_next("429")
    mailing = await add_mailing(api)
    msg_id = message_id(mailing["id"], client["id"])
    await eventually(lambda: _attempted(store, msg_id, 1, MessageStatus.PENDING))
    (message,) = await store.messages.page(limit=1, mailing_id=mailing["id"])
    assert message.due_at - clock.now() >= timedelta(seconds=30) and "429" in message.last_error
    clock.advance(29)
    await _settle_briefly()
    assert probe.state.ledger.requests == 1
    clock.advance(1)
    await wait_counts(store, mailing["id"], {"sent": 1})


async def test_a_permanent_rejection_fails_the_message_without_retrying(api, store, probe, clock):
    await add_clients(api, 1)
    probe.fail_next("400")
    mailing = await add_mailing(api)
    await wait_counts(store, mailing["id"], {"failed": 1})
    clock.advance(3600)
    await _settle_briefly()
    assert probe.state.ledger.requests == 1
    (message,) = await store.messages.page(limit=1, mailing_id=mailing["id"])
    assert "HTTP 400" in message.last_error


async def test_a_refused_token_never_fails_messages(start_herald, store, probe, clock):
    api = await start_herald(dispatch={"max_attempts": 2, "backoff_cap_s": 2.0})
    (client,) = await add_clients(api, 1)
    probe.fail_next("401", 5)  # more refusals than max_attempts
    mailing = await add_mailing(api)
    msg_id = message_id(mailing["id"], client["id"])
    for refusals in range(1, 6):
        # The retry is recorded before the clock moves on: its due time is then at most 2 s ahead.
        await eventually(lambda refusals=refusals: _attempted(store, msg_id, refusals, MessageStatus.PENDING))
        clock.advance(3)
    await wait_counts(store, mailing["id"], {"sent": 1})
    assert probe.state.ledger.by_outcome["401"] == 5


async def test_retries_stop_at_max_attempts(start_herald, store, probe, clock):
    api = await start_herald(dispatch={"max_attempts": 3, "backoff_cap_s": 2.0})
    await add_clients(api, 1)
    probe.fail_next("503", 10)
    mailing = await add_mailing(api)
    for _ in range(4):
        clock.advance(3)
        await _settle_briefly()
    await wait_counts(store, mailing["id"], {"failed": 1})
    (message,) = await store.messages.page(limit=1, mailing_id=mailing["id"])
    assert message.attempts == 3 and "gave up after 3 attempts" in message.last_error
    assert probe.state.ledger.requests == 3


async def test_send_window_in_each_clients_local_time(api, store, probe, clock):
    # At T0 (12:00 UTC) it is 15:00 in Moscow and 21:00 in Tokyo; the window is 09:00-18:00 local.
    (moscow,) = await add_clients(api, 1, timezone="Europe/Moscow")
    (tokyo,) = await add_clients(api, 1, start=1, timezone="Asia/Tokyo")
    mailing = await add_mailing(api, end_at="2026-06-03T00:00:00Z", send_window={"start": "09:00", "end": "18:00"})
    await wait_counts(store, mailing["id"], {"sent": 1, "pending": 1})
    assert list(probe.accepted()) == [message_id(mailing["id"], moscow["id"])]
    tokyo_message = message_id(mailing["id"], tokyo["id"])
    (waiting,) = [m for m in await store.messages.page(limit=5, mailing_id=mailing["id"]) if m.id == tokyo_message]
    assert waiting.due_at == datetime.fromisoformat("2026-06-02T00:00:00+00:00")  # 09:00 in Tokyo
    clock.set(waiting.due_at - timedelta(seconds=1))
    await _settle_briefly()
    assert tokyo_message not in probe.accepted()
    clock.set(waiting.due_at)
    await wait_counts(store, mailing["id"], {"sent": 2})


async def test_a_window_that_opens_only_after_the_end_expires_the_message(api, store, probe, clock):
    await add_clients(api, 1, timezone="Asia/Tokyo")  # 21:00 there at T0
    mailing = await add_mailing(api, end_at="2026-06-01T14:00:00Z", send_window={"start": "09:00", "end": "18:00"})
    await wait_counts(store, mailing["id"], {"pending": 1})
    clock.set(datetime.fromisoformat("2026-06-01T14:00:00+00:00"))
    await wait_counts(store, mailing["id"], {"expired": 1})
    assert probe.state.ledger.requests == 0


async def _requests_seen(probe, n: int) -> bool:
    return probe.state.ledger.requests >= n


async def _attempted(store, msg_id: int, attempts: int, status: MessageStatus) -> bool:
    messages = await store.messages.page(limit=1, after=msg_id - 1)
    return bool(messages) and messages[0].attempts == attempts and messages[0].status == status


async def _settle_briefly() -> None:
    """Give the background workers a few poll rounds (they poll every 20 ms in tests)."""
    await asyncio.sleep(0.2)


async def test_a_slow_answer_times_out_and_is_retried(start_herald, store, probe, clock):
    api = await start_herald(sender={"timeout_s": 0.3})
    await add_clients(api, 1)
    probe.state.faults.update({"latency_ms": 1000})
    mailing = await add_mailing(api)
    await eventually(lambda: _last_error_is(store, mailing["id"], "no answer within 0.30s"))
    probe.state.faults.update({"latency_ms": 0})
    clock.advance(2)
    await wait_counts(store, mailing["id"], {"sent": 1})


async def test_a_request_never_runs_past_the_mailings_end(api, store, probe):
    await add_clients(api, 1)
    probe.state.faults.update({"latency_ms": 5000})
    started = asyncio.get_running_loop().time()
    mailing = await add_mailing(api, end_at="2026-06-01T12:00:00.400Z")  # 0.4 s after T0; timeout_s is 2
    await wait_counts(store, mailing["id"], {"expired": 1}, timeout=3)
    assert asyncio.get_running_loop().time() - started < 1.5  # cut at the end, not at the 2 s timeout


async def test_concurrency_stays_within_the_limit(start_herald, db, store, probe):
    await insert_clients(db, 60)
    probe.state.faults.update({"latency_ms": 50})
    api = await start_herald(dispatch={"concurrency": 7})
    mailing = await add_mailing(api)
    await wait_counts(store, mailing["id"], {"sent": 60})
    assert probe.state.ledger.max_in_flight == 7


async def _last_error_is(store, mailing_id: int, error: str) -> bool:
    messages = await store.messages.page(limit=1, mailing_id=mailing_id)
    return bool(messages) and messages[0].last_error == error
