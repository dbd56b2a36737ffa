from herald.store import Store
from herald.store.messages import Settle
from herald.domain.models import MessageStatus
from tests.helpers import T0


async def test_counts_by_mailing_and_status_come_from_the_database(store: Store):
    await store.messages.insert_planned(1, [(c, T0) for c in range(1, 6)], T0)
    claim = await store.messages.claim(3, T0, lease_s=60)
    await store.messages.insert_planned(2, [(c, T0) for c in range(1, 3)], T0)
    assert claim
    settle = Settle(claim.token)
    await store.messages.settle([
        settle.sent(claim.messages[0].id),
        settle.final(claim.messages[1].id, MessageStatus.FAILED, "HTTP 400"),
    ], T0)
    counts = await store.stats.by_mailing([1, 2, 3])
    assert counts[1] == {"pending": 2, "sending": 1, "sent": 1, "failed": 1, "expired": 0, "cancelled": 0}
    assert counts[2]["pending"] == 2 and sum(counts[2].values()) == 2
    assert sum(counts[3].values()) == 0
    overall = await store.stats.overall()
    assert overall == {"pending": 4, "sending": 1, "sent": 1, "failed": 1, "expired": 0, "cancelled": 0}
