"""The daily reports: which day's report was claimed by whom, and whether it was sent.

Each try at a day's report inserts its own document, `_id` "<day>:<take>": the unique `_id` lets exactly one
process hold a take, and the takes of a day stay as its history. A take that was never marked sent may be taken
over once its lease has run out: its process died or gave up.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pymongo.errors import DuplicateKeyError

from herald.store.db import Database


class ReportStore:
    def __init__(self, db: Database) -> None:
        self._col = db.reports

    async def claim(self, day: date, owner: str, now: datetime, lease_s: float) -> str | None:
        """Take the day's report; returns the take's key, or None if it was sent or someone else holds it."""
        latest = await self._col.find_one({"day": day.isoformat()}, sort=[("take", -1)])
        if latest is not None and (latest["sent_at"] is not None or latest["lease_until"] > now):
            return None
        take = 1 if latest is None else latest["take"] + 1
        key = f"{day.isoformat()}:{take}"
        try:
            await self._col.insert_one(
                {
                    "_id": key,
                    "day": day.isoformat(),
                    "take": take,
                    "owner": owner,
                    "claimed_at": now,
                    "lease_until": now + timedelta(seconds=lease_s),
                    "sent_at": None,
                }
            )
        except DuplicateKeyError:
            return None
        return key

    async def mark_sent(self, key: str, now: datetime) -> None:
        await self._col.update_one({"_id": key}, {"$set": {"sent_at": now}})

    async def release(self, key: str, now: datetime) -> None:
        """Give up a take that was not sent, so that the next run may try the day again at once."""
        await self._col.update_one({"_id": key, "sent_at": None}, {"$set": {"lease_until": now}})

    async def sent_at(self, day: date) -> datetime | None:
        doc = await self._col.find_one({"day": day.isoformat(), "sent_at": {"$ne": None}})
        return None if doc is None else doc["sent_at"]

    async def last_sent(self) -> datetime | None:
        """When the most recent day's report was sent."""
        doc = await self._col.find_one({"sent_at": {"$ne": None}}, {"sent_at": 1}, sort=[("day", -1)])
        return None if doc is None else doc["sent_at"]
