import asyncio

from herald.store.db import INDEXES, connect, ensure_indexes


async def test_processes_starting_together_all_get_their_indexes(db_url):
    clients = [connect(db_url) for _ in range(4)]
    try:
        await asyncio.gather(*(ensure_indexes(client.get_default_database()) for client in clients))
        db = clients[0].get_default_database()
        for collection, indexes in INDEXES.items():
            names = {index["name"] async for index in await db[collection].list_indexes()}
            assert {index.document["name"] for index in indexes} <= names, collection
    finally:
        await asyncio.gather(*(client.close() for client in clients))
