"""The read-side queries the admin pages add: sent per interval, the audience by timezone, phone search."""

from __future__ import annotations

from datetime import timedelta

from herald.domain.models import ClientFilter
from herald.store import Store
from herald.store.db import Database
from tests.helpers import T0, insert_clients


async def test_sent_messages_are_counted_per_interval(db: Database, store: Store) -> None:
    sent_at = [T0 + timedelta(minutes=m) for m in (0, 59, 60, 150)]
    await db.messages.insert_many(
        [{"_id": i, "mailing_id": 1, "client_id": i, "status": "sent", "sent_at": at} for i, at in enumerate(sent_at)]
        + [{"_id": 9, "mailing_id": 1, "client_id": 9, "status": "failed", "sent_at": None}]
    )
    hour = timedelta(hours=1)
    assert await store.stats.sent_per_interval(T0, hour, 3) == [(T0, 2), (T0 + hour, 1), (T0 + 2 * hour, 1)]


async def test_the_audience_is_counted_by_timezone(db: Database, store: Store) -> None:
    await insert_clients(db, 5)
    await db.clients.update_many({"_id": {"$in": [1, 2]}}, {"$set": {"timezone": "Asia/Omsk", "tag": "vip"}})
    await db.clients.update_one({"_id": 3}, {"$set": {"tag": "vip"}})
    assert await store.clients.audience_by_timezone(ClientFilter((), ("vip",))) == {"Asia/Omsk": 2, "UTC": 1}
    assert await store.clients.audience_by_timezone(ClientFilter()) == {"UTC": 3, "Asia/Omsk": 2}


async def test_clients_are_found_by_the_start_of_their_phone(db: Database, store: Store) -> None:
    await insert_clients(db, 12)  # phones 79000000001 ... 79000000012
    found = await store.clients.page(after=None, limit=50, phone_prefix="7900000001")
    assert [client.id for client in found] == [10, 11, 12]
    assert await store.clients.page(after=None, limit=50, phone_prefix=".*") == []
