"""Herald's FerretDB patches (patches/ferretdb), each checked where it shows: in explain, in results, under races.

Explain's pushdown fields are FerretDB's own; against MongoDB ($HERALD_MONGO_URL) only the results are checked.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo import ASCENDING, UpdateOne

from herald.store.db import Database
from tests.helpers import T0

ON_FERRETDB = not os.environ.get("HERALD_MONGO_URL")
ferretdb_only = pytest.mark.skipif(not ON_FERRETDB, reason="explain's pushdown fields are FerretDB's")


async def explain(db: Database, command: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await db.command("explain", command)
    return result


def plan(result: dict[str, Any]) -> str:
    return " ".join(result["queryPlanner"]["Plan"])


@ferretdb_only
async def test_finds_and_writes_by_integer_id_use_the_index(db: Database) -> None:
    await db.c.insert_many([{"_id": i, "n": i} for i in range(1, 101)])
    result = await explain(db, {"find": "c", "filter": {"_id": 42}})
    assert result["filterPushdown"] is True
    assert "USING INDEX" in plan(result) and "_id_" in plan(result)
    await db.c.update_one({"_id": 42}, {"$set": {"n": 0}})
    await db.c.delete_one({"_id": 43})
    assert await db.c.find_one({"_id": 42}) == {"_id": 42, "n": 0}
    assert await db.c.count_documents({}) == 99


# Documents whose field `v` holds values of several types, as MongoDB compares them within type brackets.
MIXED = [
    {"_id": 1, "v": 1, "s": "a"},
    {"_id": 2, "v": 1.0, "s": "a"},
    {"_id": 3, "v": 2, "s": "b"},
    {"_id": 4, "v": "1", "s": "a"},
    {"_id": 5, "v": None, "s": "b"},
    {"_id": 6, "s": "a"},
    {"_id": 7, "v": T0, "s": "a"},
    {"_id": 8, "v": True, "s": "b"},
]


async def ids(db: Database, query: dict[str, Any], **options: Any) -> list[int]:
    return [doc["_id"] async for doc in db.c.find(query, {"_id": 1}, **options)]


# Each filter with the documents of MIXED it matches, and whether it matches ARRAY (by any of its elements).
FILTERS = [
    ({"v": 1}, [1, 2], True),
    ({"v": {"$gt": 1}}, [3], True),
    ({"v": {"$lte": 1}}, [1, 2], True),
    ({"v": "1"}, [4], False),
    ({"v": None}, [5, 6], False),
    ({"v": {"$in": [2, None]}}, [3, 5, 6], True),
    ({"v": {"$in": []}}, [], False),
    ({"v": {"$gte": T0}}, [7], False),
    ({"v": True}, [8], False),
    ({"v": 1, "s": "a"}, [1, 2], True),
]
ARRAY = {"_id": 9, "v": [1, 2], "s": "a"}


@pytest.mark.parametrize("with_array", [False, True], ids=["no-array", "array"])
@pytest.mark.parametrize(("query", "expected", "array_matches"), FILTERS)
async def test_filters_match_as_mongodb_does(
    db: Database, query: dict[str, Any], expected: list[int], array_matches: bool, with_array: bool
) -> None:
    """SQLite selects what it can (a superset where a field's values span types); the result is MongoDB's."""
    await db.c.create_index([("v", ASCENDING), ("s", ASCENDING)])
    await db.c.insert_many([*MIXED, ARRAY] if with_array else MIXED)
    want = sorted(expected + ([9] if with_array and array_matches else []))
    assert sorted(await ids(db, query)) == want
    assert await db.c.count_documents(query) == len(want)
    assert await ids(db, query, sort=[("_id", 1)], limit=2) == want[:2]


@ferretdb_only
async def test_filters_use_indexes(db: Database) -> None:
    await db.c.create_index([("v", ASCENDING), ("s", ASCENDING)])
    await db.c.insert_many([{"_id": i, "v": i % 5, "s": "ab"[i % 2]} for i in range(1, 201)])
    result = await explain(db, {"find": "c", "filter": {"v": 3, "s": "a"}})
    assert result["filterPushdown"] is True and "USING INDEX" in plan(result)
    assert sorted(await ids(db, {"v": 3, "s": "a"})) == [i for i in range(1, 201) if i % 5 == 3 and i % 2 == 0]


async def test_sorted_limited_finds_read_only_what_they_return(db: Database) -> None:
    await db.c.create_index([("due", ASCENDING)])
    await db.c.insert_many([{"_id": i, "due": T0 + timedelta(seconds=(i * 37) % 101)} for i in range(1, 101)])
    query = {"due": {"$lte": T0 + timedelta(seconds=50)}}
    found = await ids(db, query, sort=[("due", 1)], limit=5)
    assert found == sorted((i for i in range(1, 101) if (i * 37) % 101 <= 50), key=lambda i: (i * 37) % 101)[:5]
    assert await ids(db, {"_id": {"$gt": 90}}, sort=[("_id", -1)], limit=3) == [100, 99, 98]
    if ON_FERRETDB:
        result = await explain(db, {"find": "c", "filter": query, "sort": {"due": 1}, "limit": 5})
        assert (result["sortPushdown"], result["limitPushdown"]) == (True, True)
        assert "USING INDEX" in plan(result) and "TEMP B-TREE" not in plan(result)


async def test_a_sort_over_values_of_several_types_keeps_mongodbs_order(db: Database) -> None:
    await db.c.insert_many(MIXED)
    # null and missing, then numbers, then strings, then booleans, then dates.
    assert await ids(db, {}, sort=[("v", 1), ("_id", 1)]) == [5, 6, 1, 2, 3, 4, 8, 7]
    assert (await ids(db, {}, sort=[("v", -1)], limit=1)) == [7]
    if ON_FERRETDB:
        result = await explain(db, {"find": "c", "filter": {}, "sort": {"v": -1}, "limit": 1})
        assert (result["sortPushdown"], result["limitPushdown"]) == (False, False)


async def test_counts_come_from_the_index(db: Database) -> None:
    await db.c.create_index([("m", ASCENDING), ("status", ASCENDING)])
    await db.c.insert_many(
        [{"_id": i, "m": i % 3, "status": ["sent", "failed", "pending"][i % 4 % 3]} for i in range(1, 301)]
    )
    pipeline: list[dict[str, Any]] = [{"$match": {"m": 1}}, {"$group": {"_id": "$status", "n": {"$sum": 1}}}]
    counts = {row["_id"]: row["n"] async for row in await db.c.aggregate(pipeline)}
    expected: dict[str, int] = {}
    for i in range(1, 301):
        if i % 3 == 1:
            status = ["sent", "failed", "pending"][i % 4 % 3]
            expected[status] = expected.get(status, 0) + 1
    assert counts == expected
    assert await db.c.count_documents({"m": 1, "status": "sent"}) == expected["sent"]
    if ON_FERRETDB:
        assert (await explain(db, {"aggregate": "c", "pipeline": pipeline, "cursor": {}}))["countPushdown"] is True


async def test_a_count_by_a_field_that_held_an_array_is_still_right(db: Database) -> None:
    await db.c.insert_many([{"_id": 1, "tag": "a"}, {"_id": 2, "tag": ["a", "b"]}, {"_id": 3, "tag": "b"}])
    assert await db.c.count_documents({"tag": "a"}) == 2
    if ON_FERRETDB:
        pipeline = [{"$match": {"tag": "a"}}, {"$group": {"_id": 1, "n": {"$sum": 1}}}]
        assert (await explain(db, {"aggregate": "c", "pipeline": pipeline, "cursor": {}}))["countPushdown"] is False


async def test_concurrent_updates_are_atomic(db: Database) -> None:
    await db.c.insert_one({"_id": 0, "n": 0})
    await db.c.insert_many([{"_id": i, "owner": None} for i in range(1, 301)])

    async def increment() -> None:
        for _ in range(25):
            await db.c.update_one({"_id": 0}, {"$inc": {"n": 1}})

    async def claim(owner: str) -> int:
        result = await db.c.update_many({"_id": {"$gte": 1}, "owner": None}, {"$set": {"owner": owner}})
        return result.modified_count

    claimed = await asyncio.gather(*(increment() for _ in range(20)), *(claim(f"w{i}") for i in range(8)))
    assert (await db.c.find_one({"_id": 0}))["n"] == 500  # type: ignore[index]
    assert sum(n for n in claimed if n is not None) == 300  # each document claimed once


async def test_a_bulk_write_of_many_statements_completes(db: Database) -> None:
    await db.c.insert_many([{"_id": i} for i in range(200)])
    result = await asyncio.wait_for(
        db.c.bulk_write([UpdateOne({"_id": i}, {"$set": {"x": i}}) for i in range(150)], ordered=False), 30
    )
    assert result.modified_count == 150


async def test_batched_replacements_by_id_write_each_document(db: Database) -> None:
    ids: list[Any] = [*range(250), "a", "b", ObjectId(), T0, 2.5, {"compound": 1}]
    await db.c.insert_many([{"_id": i, "n": 0} for i in ids])
    result = await db.c.update_many({}, {"$inc": {"n": 1}})
    assert result.modified_count == len(ids)
    assert {str(doc["_id"]): doc["n"] async for doc in db.c.find()} == {str(i): 1 for i in ids}
