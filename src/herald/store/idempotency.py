"""Idempotency keys: the first answer to a create, kept for a day so that a retry with the same key gets it again
instead of a second write. Every query is by `_id` but the daily purge, a range of the `created_at` index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.errors import OperationFailure

from herald.store.db import Database, is_duplicate_key


@dataclass(frozen=True)
class KeyUse:
    """What holds a key: the request that took it, and its answer once there is one."""

    fingerprint: str
    created_at: datetime
    status: int | None = None  # None while the first request is still being served
    content_type: str | None = None
    body: str | None = None


def to_millisecond(moment: datetime) -> datetime:
    """BSON dates hold milliseconds: a time compared with a stored one must be as coarse."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class IdempotencyStore:
    def __init__(self, db: Database) -> None:
        self._col = db.idempotency_keys

    async def take(self, key: str, fingerprint: str, now: datetime) -> KeyUse | None:
        """Take `key` for a first request (None), or tell what holds it. `now` is stored as given: see
        to_millisecond."""
        for _ in range(2):  # a key deleted between the refused insert and the read is free again
            try:
                await self._col.insert_one({"_id": key, "fingerprint": fingerprint, "created_at": now})
                return None
            except OperationFailure as exc:
                if not is_duplicate_key(exc):
                    raise
            if (doc := await self._col.find_one({"_id": key})) is not None:
                return _use(doc)
        raise RuntimeError(f"idempotency key {key!r} keeps changing hands")

    async def take_over(self, key: str, seen: KeyUse, fingerprint: str, now: datetime) -> bool:
        """Take a key whose use has expired or was abandoned, unless another request took it first."""
        result = await self._col.replace_one(
            {"_id": key, "created_at": seen.created_at}, {"fingerprint": fingerprint, "created_at": now}
        )
        return result.matched_count == 1

    async def answer(self, key: str, taken_at: datetime, status: int, content_type: str, body: str) -> None:
        await self._col.update_one(
            {"_id": key, "created_at": taken_at},
            {"$set": {"status": status, "content_type": content_type, "body": body}},
        )

    async def release(self, key: str, taken_at: datetime) -> None:
        """Free a key whose request ended without an answer worth keeping (a server error), for a retry."""
        await self._col.delete_one({"_id": key, "created_at": taken_at})

    async def purge(self, before: datetime) -> int:
        result = await self._col.delete_many({"created_at": {"$lt": before}})
        return result.deleted_count


def _use(doc: dict[str, Any]) -> KeyUse:
    return KeyUse(doc["fingerprint"], doc["created_at"], doc.get("status"), doc.get("content_type"), doc.get("body"))
