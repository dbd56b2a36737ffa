from datetime import timedelta

import pytest

from herald.domain.models import ClientFilter, MessageStatus
from herald.errors import Conflict
from herald.store import Store
from herald.store.messages import Settle
from tests.helpers import T0


def fields(**overrides):
    return {
        "text": "hi",
        "start_at": T0,
        "end_at": T0 + timedelta(hours=1),
        "filter": ClientFilter(),
        "send_window": None,
        **overrides,
    }


async def test_only_one_planner_holds_a_mailing_until_its_lease_ends(store: Store):
    mailing = await store.mailings.create(fields(), T0)
    assert await store.mailings.claim_planning("a", T0, lease_s=30) == (mailing, 0)
    assert await store.mailings.claim_planning("b", T0 + timedelta(seconds=29), lease_s=30) is None
    assert await store.mailings.save_plan_progress(mailing.id, "a", 40, T0, lease_s=30)
    claimed = await store.mailings.claim_planning("b", T0 + timedelta(seconds=31), lease_s=30)
    assert claimed == (mailing, 40)  # b resumes where a stopped
    assert not await store.mailings.save_plan_progress(mailing.id, "a", 50, T0, lease_s=30)


async def test_future_and_ended_mailings_are_not_planned(store: Store):
    await store.mailings.create(fields(start_at=T0 + timedelta(minutes=1), end_at=T0 + timedelta(hours=1)), T0)
    await store.mailings.create(fields(start_at=T0 - timedelta(hours=2), end_at=T0), T0)
    assert await store.mailings.claim_planning("a", T0, lease_s=30) is None


async def test_a_filter_change_starts_planning_over(store: Store):
    mailing = await store.mailings.create(fields(), T0)
    await store.mailings.claim_planning("a", T0, lease_s=30)
    await store.mailings.save_plan_progress(mailing.id, "a", 40, T0, lease_s=30)
    assert await store.mailings.finish_planning(mailing.id, "a", T0)
    assert await store.mailings.claim_planning("a", T0, lease_s=30) is None
    updated = await store.mailings.update(mailing, {"filter": ClientFilter(tags=("x",))}, T0, replan=True)
    assert await store.mailings.claim_planning("b", T0, lease_s=30) == (updated, 0)


async def test_concurrent_edits_of_one_version_conflict(store: Store):
    mailing = await store.mailings.create(fields(), T0)
    await store.mailings.update(mailing, {"text": "first"}, T0 + timedelta(seconds=1), replan=False)
    with pytest.raises(Conflict):
        await store.mailings.update(mailing, {"text": "second"}, T0 + timedelta(seconds=2), replan=False)


async def test_an_expiry_decided_on_an_end_since_moved_later_is_undone(store: Store):
    mailing = await store.mailings.create(fields(end_at=T0 + timedelta(minutes=1)), T0)
    await store.messages.insert_planned(mailing.id, [(1, T0)], T0)
    claim = await store.messages.claim(1, T0, lease_s=60)
    assert claim
    # The worker read the old end; meanwhile an edit moved the end later and found nothing expired to reopen.
    await store.mailings.update(mailing, {"end_at": T0 + timedelta(hours=1)}, T0, replan=False)
    await store.messages.settle([Settle(claim.token).expired(claim.messages[0].id, mailing.end_at)], T0)
    assert not await store.expiry_stands(mailing.id, mailing.end_at, T0)
    (message,) = await store.messages.page(after=None, limit=1)
    assert (message.status, message.due_at) == (MessageStatus.PENDING, T0)


async def test_an_expiry_on_the_current_end_stands(store: Store):
    mailing = await store.mailings.create(fields(end_at=T0 + timedelta(minutes=1)), T0)
    await store.messages.insert_planned(mailing.id, [(1, T0)], T0)
    assert await store.messages.expire_pending(mailing.id) == 1
    assert await store.expiry_stands(mailing.id, mailing.end_at, T0)
    (message,) = await store.messages.page(after=None, limit=1)
    assert message.status is MessageStatus.EXPIRED
