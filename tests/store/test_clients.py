import asyncio

import pytest

from herald.errors import Conflict, NotFound
from herald.store import Store
from tests.helpers import T0


def fields(phone: str) -> dict:
    return {"phone": phone, "operator_code": phone[1:4], "tag": None, "timezone": "UTC"}


async def test_concurrent_creations_get_distinct_ids(store: Store):
    clients = await asyncio.gather(*(store.clients.create(fields(f"7900000{i:04d}"), T0) for i in range(30)))
    assert len({c.id for c in clients}) == 30
    assert {c.phone for c in clients} == {c.phone for c in await store.clients.page(after=None, limit=100)}


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
