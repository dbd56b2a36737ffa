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
    # The daily purge of keys older than a day.
    "idempotency_keys": [IndexModel([("created_at", ASCENDING)], name="created_at")],
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


def connect(url: str, timeout_s: float = 30.0) -> AsyncMongoClient[dict[str, Any]]:
    # tz_aware: every datetime that comes back is UTC-aware, like every datetime Herald writes. The socket timeout
    # bounds each wait for an answer: a hung database fails the operation, and the caller recovers as from any error.
    return AsyncMongoClient(
        url, tz_aware=True, connect=False, serverSelectionTimeoutMS=5000, socketTimeoutMS=int(timeout_s * 1000)
    )


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


class IdSequence:
    """Integer ids of a named sequence, reserved from the database `block` at a time.

    A block is reserved by one atomic $inc (on MongoDB, and on Herald's FerretDB through
    patches/ferretdb/0005), so no two processes ever get the same id. A process that stops leaves the rest of
    its block unused: ids have gaps, never repeats.
    """

    def __init__(self, db: Database, name: str, *, block: int = 1, limit: int = 2**63 - 1) -> None:
        self._db = db
        self.name = name
        self._block = block
        self._limit = limit
        self._next, self._last = 1, 0
        self._floor = 0  # the next block starts after this id, if set
        self._lock = asyncio.Lock()

    async def next(self) -> int:
        async with self._lock:
            if self._next > self._last:
                self._last = await self._reserve()
                self._next = self._last - self._block + 1
            value = self._next
            if value > self._limit:
                raise RuntimeError(f"the {self.name} sequence is past its limit of {self._limit}")
            self._next += 1
            return value

    async def take(self, count: int) -> int:
        """The first of `count` consecutive ids reserved at once (for a batch), apart from the current block."""
        async with self._lock:
            last = await self._reserve(count)
            if last > self._limit:
                raise RuntimeError(f"the {self.name} sequence is past its limit of {self._limit}")
            return last - count + 1

    def skip_past(self, taken: int) -> None:
        """Forget the current block; the next one starts after `taken`."""
        self._next, self._last, self._floor = 1, 0, taken

    async def _reserve(self, count: int = 0, attempts: int = 5) -> int:
        """The last id of a newly reserved block (of `count` ids, else the block size). Only the very first upserts
        of a sequence can race, on MongoDB; the loser tries again."""
        if self._floor:
            await self._db.counters.update_one({"_id": self.name}, {"$max": {"seq": self._floor}}, upsert=True)
            self._floor = 0
        for _ in range(attempts):
            try:
                doc = await self._db.counters.find_one_and_update(
                    {"_id": self.name},
                    {"$inc": {"seq": count or self._block}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except OperationFailure as exc:
                if not is_duplicate_key(exc):
                    raise
                await asyncio.sleep(random.uniform(0, _RACE_JITTER_S))
                continue
            assert doc is not None  # upsert with AFTER always returns the document
            return int(doc["seq"])
        raise RuntimeError(f"could not advance the {self.name} sequence after {attempts} attempts")


async def insert_with_new_id(
    collection: AsyncCollection[dict[str, Any]],
    ids: IdSequence,
    doc: dict[str, Any],
    clashes: Callable[[], Awaitable[bool]] | None = None,
    attempts: int = 3,
) -> int:
    """Insert `doc` under the next id of `ids`; returns the id.

    A duplicate key is a clash on another unique field when `clashes()` says so, and is re-raised as
    DuplicateKeyError. Otherwise the id was taken by a document written with an id of its own, past the sequence
    (a restored backup, say): the sequence then skips past the highest id, and the insert is tried again.
    """
    for _ in range(attempts):
        new_id = await ids.next()
        try:
            await collection.insert_one({"_id": new_id, **doc})
            return new_id
        except DuplicateKeyError:
            if clashes is not None and await clashes():
                raise
            highest = await collection.find_one({}, {"_id": 1}, sort=[("_id", -1)])
            ids.skip_past(highest["_id"] if highest is not None else new_id)
    raise RuntimeError(f"no free id in {collection.name} after {attempts} attempts")
