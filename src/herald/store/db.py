"""The MongoDB connection, the indexes every query relies on, and integer id allocation."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

Database = AsyncDatabase[dict[str, Any]]

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
    ],
    "messages": [
        # One message per mailing and client: what makes planning idempotent.
        IndexModel([("mailing_id", ASCENDING), ("client_id", ASCENDING)], unique=True, name="mailing_client"),
        # The dispatcher's claim: due pending messages and expired leases.
        IndexModel([("status", ASCENDING), ("due_at", ASCENDING)], name="due"),
        # Statistics by mailing and status (covered), and the message log of one mailing.
        IndexModel([("mailing_id", ASCENDING), ("status", ASCENDING), ("_id", ASCENDING)], name="mailing_status"),
        IndexModel([("mailing_id", ASCENDING), ("_id", ASCENDING)], name="mailing_log"),
        IndexModel([("client_id", ASCENDING), ("_id", ASCENDING)], name="client_log"),
        IndexModel([("status", ASCENDING), ("_id", ASCENDING)], name="status_log"),
    ],
}


def connect(url: str) -> AsyncMongoClient[dict[str, Any]]:
    # tz_aware: every datetime that comes back is UTC-aware, like every datetime Herald writes.
    return AsyncMongoClient(url, tz_aware=True, connect=False, serverSelectionTimeoutMS=5000)


async def ensure_indexes(db: Database) -> None:
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes(indexes)


async def allocate_ids(db: Database, sequence: str, count: int = 1) -> range:
    """Reserve `count` consecutive int64 ids from a named sequence in one atomic round trip."""
    doc = await db.counters.find_one_and_update(
        {"_id": sequence}, {"$inc": {"seq": count}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert doc is not None  # upsert with AFTER always returns the document
    last = int(doc["seq"])
    return range(last - count + 1, last + 1)
