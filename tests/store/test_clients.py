import asyncio

import pytest

from herald.domain.models import ClientFilter
from herald.errors import Conflict, NotFound
from herald.store import Store
from herald.store.db import Database
from tests.helpers import T0

MAILING = {"text": "Hi", "start_at": T0, "end_at": T0, "filter": ClientFilter(), "send_window": None}


def fields(phone: str) -> dict:
    return {"phone": phone, "operator_code": phone[1:4], "tag": None, "timezone": "UTC"}


async def test_concurrent_creations_get_distinct_ids(store: Store):
    clients = await asyncio.gather(*(store.clients.create(fields(f"7900000{i:04d}"), T0) for i in range(30)))
    assert len({c.id for c in clients}) == 30
    assert {c.phone for c in clients} == {c.phone for c in await store.clients.page(after=None, limit=100)}


async def test_processes_creating_at_once_never_share_an_id(db: Database):
    """Each Store stands for a process with its own block of ids; all of them write at once."""
    stores = [Store.over(db) for _ in range(5)]
    clients, mailings = await asyncio.gather(
        asyncio.gather(*(stores[i % 5].clients.create(fields(f"7900{i:07d}"), T0) for i in range(400))),
        asyncio.gather(*(stores[i % 5].mailings.create(MAILING, T0) for i in range(50))),
    )
    client_ids, mailing_ids = [c.id for c in clients], [m.id for m in mailings]
    assert len(set(client_ids)) == 400 and all(isinstance(i, int) and 0 < i < 2**32 for i in client_ids)
    assert len(set(mailing_ids)) == 50 and all(isinstance(i, int) and i > 0 for i in mailing_ids)


async def test_an_id_taken_behind_the_sequence_is_skipped(store: Store, db: Database):
    await db.clients.insert_one({"_id": 1, **fields("79999999999"), "created_at": T0, "updated_at": T0})
    client = await store.clients.create(fields("79000000001"), T0)
    assert client.id > 1 and (await store.clients.get(1)).phone == "79999999999"


async def test_a_taken_phone_is_a_conflict_on_create_and_update(store: Store):
    first = await store.clients.create(fields("79000000001"), T0)
    second = await store.clients.create(fields("79000000002"), T0)
    with pytest.raises(Conflict):
        await store.clients.create(fields("79000000001"), T0)
    with pytest.raises(Conflict):
        await store.clients.update(second.id, {"phone": first.phone}, T0)


async def test_missing_clients_are_not_found(store: Store):
    with pytest.raises(NotFound):
        await store.clients.get(404)
    with pytest.raises(NotFound):
        await store.clients.update(404, {"tag": "x"}, T0)
    with pytest.raises(NotFound):
        await store.clients.delete(404)
