"""The MongoDB connection, the indexes every query relies on, and integer ids."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, BulkWriteError, DuplicateKeyError, OperationFailure

Database = AsyncDatabase[dict[str, Any]]
DUPLICATE_KEY = 11000

INDEXES: dict[str, list[IndexModel]] = {
    "clients": [
        IndexModel([("phone", ASCENDING)], unique=True, name="phone_unique"),
        IndexModel([("operator_code", ASCENDING), ("_id", ASCENDING)], name="operator_code"),
        IndexModel([("tag", ASCENDING), ("_id", ASCENDING)], name="tag"),
    ],
    "mailings": [
        # The planner's "started, not yet planned" and the closer's "ended, not yet closed".
        IndexModel([("planned_at", ASCENDING), ("start_at", ASCENDING)], name="planning"),
        IndexModel([("closed_at", ASCENDING), ("end_at", ASCENDING)], name="closing"),
        # The daily report's "ran at some time of the day": every mailing that ended after the day began.
        IndexModel([("end_at", ASCENDING)], name="report"),
    ],
    "messages": [
        # The dispatcher's claim: only pending and sending messages have a due time. (A mailing's message log
        # needs no index of its own: its message ids are one _id range.)
        IndexModel([("due_at", ASCENDING)], name="due_at"),
        # Statistics by mailing and status (counted from the index), and a mailing's messages of one status.
        IndexModel([("mailing_id", ASCENDING), ("status", ASCENDING), ("_id", ASCENDING)], name="mailing_status"),
        IndexModel([("client_id", ASCENDING), ("_id", ASCENDING)], name="client_log"),
        # The dashboard's messages sent per hour: only sent messages have a sent time.
        IndexModel([("sent_at", ASCENDING)], name="sent_time"),
    ],
    "reports": [
        IndexModel([("day", ASCENDING), ("take", ASCENDING)], name="day_take"),
    ],
}

# Indexes of earlier versions that no query uses any more, dropped where they exist: every index costs every
# write of a message.
RETIRED_INDEXES: dict[str, list[str]] = {"messages": ["due", "mailing_log", "status_log", "sent_at"]}

# Writers racing for one id or one counter document spread out by up to this long before trying again.
_RACE_JITTER_S = 0.005


def is_duplicate_key(exc: OperationFailure) -> bool:
    """A unique index refused the write. FerretDB 1.x reports that from findAndModify as an InternalError."""
    return isinstance(exc, DuplicateKeyError) or "UNIQUE constraint failed" in str(exc)


async def insert_new(collection: AsyncCollection[dict[str, Any]], docs: Sequence[dict[str, Any]]) -> set[int]:
    """Insert, unordered; returns the positions of the documents whose _id was taken. Other errors are raised."""
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details["writeErrors"]
        if any(error["code"] != DUPLICATE_KEY for error in errors):
            raise
        return {error["index"] for error in errors}
    return set()


def connect(url: str) -> AsyncMongoClient[dict[str, Any]]:
    # tz_aware: every datetime that comes back is UTC-aware, like every datetime Herald writes.
    return AsyncMongoClient(url, tz_aware=True, connect=False, serverSelectionTimeoutMS=5000)


async def ensure_indexes(db: Database, attempts: int = 4) -> None:
    """Create the indexes that are missing, and drop retired ones. Only missing ones: FerretDB 1.x panics on
    createIndexes for existing ones.

    Processes that start together race to create the same index; on FerretDB the loser's command dies with its
    connection. It looks again and finds the index there.
    """
    for attempt in range(1, attempts + 1):
        try:
            for collection, indexes in INDEXES.items():
                existing = {index["name"] async for index in await db[collection].list_indexes()}
                missing = [index for index in indexes if index.document["name"] not in existing]
                if missing:
                    await db[collection].create_indexes(missing)
                for name in existing.intersection(RETIRED_INDEXES.get(collection, [])):
                    await db[collection].drop_index(name)
            return
        except (AutoReconnect, OperationFailure):
            if attempt == attempts:
                raise
            await asyncio.sleep(random.uniform(0.1, 0.5) * attempt)


async def next_id(db: Database, sequence: str, attempts: int = 5) -> int:
    """The next int64 id of a named sequence: each call gets its own.

    The increment is atomic, on MongoDB and on Herald's FerretDB (patches/ferretdb/0005). Only the very first
    upserts of a sequence can race on MongoDB, and the loser tries again.
    """
    for _ in range(attempts):
        try:
            doc = await db.counters.find_one_and_update(
                {"_id": sequence}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
            )
        except OperationFailure as exc:
            if not is_duplicate_key(exc):
                raise
            await asyncio.sleep(random.uniform(0, _RACE_JITTER_S))
            continue
        assert doc is not None  # upsert with AFTER always returns the document
        return int(doc["seq"])
    raise RuntimeError(f"could not advance the {sequence} sequence after {attempts} attempts")


async def insert_with_new_id(
    db: Database, collection: str, doc: dict[str, Any], clashes: Callable[[], Awaitable[bool]] | None = None,
    attempts: int = 3,
) -> int:
    """Insert `doc` under the next id of the collection's sequence; returns the id.

    A duplicate key is a clash on another unique field when `clashes()` says so, and is re-raised as
    DuplicateKeyError. Otherwise the id was taken by a document written with an id of its own, past the sequence
    (a restored backup, say): the sequence then skips past the highest id, and the insert is tried again.
    """
    for _ in range(attempts):
        new_id = await next_id(db, collection)
        try:
            await db[collection].insert_one({"_id": new_id, **doc})
            return new_id
        except DuplicateKeyError:
            if clashes is not None and await clashes():
                raise
            highest = await db[collection].find_one({}, {"_id": 1}, sort=[("_id", -1)])
            if highest is not None:
                await db.counters.update_one({"_id": collection}, {"$max": {"seq": highest["_id"]}})
    raise RuntimeError(f"no free id in {collection} after {attempts} attempts")
