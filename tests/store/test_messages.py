import asyncio
from datetime import timedelta

from herald.domain.models import MessageStatus
from herald.store import Store
from herald.store.messages import Settle, message_id
from tests.helpers import T0


async def test_planning_twice_creates_one_message_per_client(store: Store):
    due = [(client_id, T0) for client_id in range(1, 6)]
    assert await store.messages.insert_planned(7, due, T0) == 5
    assert await store.messages.insert_planned(7, [*due, (6, T0)], T0) == 1
    messages = await store.messages.page(after=None, limit=100, mailing_id=7)
    assert [(m.client_id, m.id) for m in messages] == [(c, message_id(7, c)) for c in range(1, 7)]


async def test_planning_again_revives_a_message_cancelled_by_a_filter_change(store: Store):
    await store.messages.insert_planned(7, [(1, T0), (2, T0)], T0)
    await store.messages.cancel_pending(ids=[message_id(7, 1)])
    await store.messages.insert_planned(7, [(1, T0)], T0)
    statuses = {m.client_id: m.status for m in await store.messages.page(after=None, limit=10)}
    assert statuses == {1: MessageStatus.PENDING, 2: MessageStatus.PENDING}


async def test_claim_takes_only_due_messages_and_counts_the_attempt(store: Store):
    await store.messages.insert_planned(1, [(1, T0), (2, T0 + timedelta(hours=1))], T0)
    claim = await store.messages.claim(10, T0, lease_s=60)
    assert claim is not None
    assert [(m.client_id, m.status, m.attempts) for m in claim.messages] == [(1, MessageStatus.SENDING, 1)]
    assert await store.messages.claim(10, T0, lease_s=60) is None  # held, and the other is not due


async def test_concurrent_claims_never_share_a_message(store: Store):
    await store.messages.insert_planned(1, [(c, T0) for c in range(1, 201)], T0)
    claims = await asyncio.gather(*(store.messages.claim(50, T0, lease_s=60) for _ in range(8)))
    taken = [m.id for claim in claims if claim for m in claim.messages]
    assert len(taken) == len(set(taken))
    rest = await store.messages.claim(500, T0, lease_s=60)
    assert len(taken) + len(rest.messages if rest else []) == 200


async def test_concurrent_reclaims_of_an_expired_lease_have_one_winner(store: Store):
    await store.messages.insert_planned(1, [(c, T0) for c in range(1, 51)], T0)
    assert await store.messages.claim(50, T0, lease_s=60)
    later = T0 + timedelta(seconds=61)
    claims = await asyncio.gather(*(store.messages.claim(50, later, lease_s=60) for _ in range(4)))
    taken = [m.id for claim in claims if claim for m in claim.messages]
    assert sorted(taken) == sorted(set(taken)) and len(taken) == 50


async def test_an_expired_lease_is_claimed_again(store: Store):
    await store.messages.insert_planned(1, [(1, T0)], T0)
    first = await store.messages.claim(10, T0, lease_s=60)
    assert await store.messages.claim(10, T0 + timedelta(seconds=59), lease_s=60) is None
    second = await store.messages.claim(10, T0 + timedelta(seconds=60), lease_s=60)
    assert first and second and second.token != first.token
    assert second.messages[0].attempts == 2  # a worker that died mid-send still used up an attempt


async def test_a_stale_worker_cannot_overwrite_the_newer_claim(store: Store):
    await store.messages.insert_planned(1, [(1, T0)], T0)
    stale = await store.messages.claim(10, T0, lease_s=60)
    fresh = await store.messages.claim(10, T0 + timedelta(seconds=61), lease_s=60)
    assert stale and fresh
    message_id = stale.messages[0].id
    assert await store.messages.settle([Settle(stale.token).final(message_id, MessageStatus.FAILED, "x")], T0) == 0
    assert await store.messages.settle([Settle(fresh.token).sent(message_id)], T0) == 1
    (message,) = await store.messages.page(after=None, limit=1)
    assert (message.status, message.sent_at, message.last_error) == (MessageStatus.SENT, T0, None)


async def test_waiting_for_the_window_gives_the_attempt_back(store: Store):
    await store.messages.insert_planned(1, [(1, T0)], T0)
    claim = await store.messages.claim(10, T0, lease_s=60)
    assert claim
    later = T0 + timedelta(hours=3)
    await store.messages.settle([Settle(claim.token).wait(claim.messages[0].id, later)], T0)
    (message,) = await store.messages.page(after=None, limit=1)
    assert (message.status, message.attempts, message.due_at) == (MessageStatus.PENDING, 0, later)


async def test_release_returns_held_messages_at_once(store: Store):
    await store.messages.insert_planned(1, [(1, T0), (2, T0)], T0)
    claim = await store.messages.claim(10, T0, lease_s=60)
    assert claim
    await store.messages.settle([Settle(claim.token).sent(claim.messages[0].id)], T0)
    assert await store.messages.release({claim.token: [m.id for m in claim.messages]}, T0) == 1
    again = await store.messages.claim(10, T0, lease_s=60)
    assert again and [(m.client_id, m.attempts) for m in again.messages] == [(2, 1)]


async def test_cancel_and_expire_touch_only_pending_messages(store: Store):
    await store.messages.insert_planned(1, [(1, T0), (2, T0), (3, T0)], T0)
    claim = await store.messages.claim(1, T0, lease_s=60)
    assert claim
    in_flight = claim.messages[0].client_id
    to_cancel, to_expire = (c for c in (1, 2, 3) if c != in_flight)
    assert await store.messages.cancel_pending(mailing_id=1, client_id=to_cancel) == 1
    assert await store.messages.expire_pending(1) == 1
    statuses = {m.client_id: m.status for m in await store.messages.page(after=None, limit=10)}
    assert statuses == {
        in_flight: MessageStatus.SENDING,
        to_cancel: MessageStatus.CANCELLED,
        to_expire: MessageStatus.EXPIRED,
    }


async def test_a_message_given_back_can_be_claimed_again_and_again(store: Store):
    await store.messages.insert_planned(1, [(1, T0)], T0)
    for _ in range(3):
        claim = await store.messages.claim(1, T0, lease_s=60)
        assert claim and claim.messages[0].attempts == 1
        await store.messages.settle([Settle(claim.token).wait(claim.messages[0].id, T0)], T0)
