"""Statistics: message counts by status, counted by the database."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from herald.domain.models import MessageStatus
from herald.store.db import Database

StatusCounts = dict[str, int]


def empty_counts() -> StatusCounts:
    return {status.value: 0 for status in MessageStatus}


def with_total(counts: StatusCounts) -> dict[str, Any]:
    return {"total": sum(counts.values()), "by_status": counts}


class StatsStore:
    def __init__(self, db: Database) -> None:
        self._messages = db.messages

    async def by_mailing(self, mailing_ids: Iterable[int]) -> dict[int, StatusCounts]:
        """Counts by status for each mailing; a mailing with no messages gets zeros."""
        ids = list(mailing_ids)
        counts = {mailing_id: empty_counts() for mailing_id in ids}
        pipeline = [
            {"$match": {"mailing_id": {"$in": ids}}},
            {"$group": {"_id": {"mailing_id": "$mailing_id", "status": "$status"}, "n": {"$sum": 1}}},
        ]
        async for row in await self._messages.aggregate(pipeline):
            counts[row["_id"]["mailing_id"]][row["_id"]["status"]] = row["n"]
        return counts

    async def overall(self) -> StatusCounts:
        counts = empty_counts()
        # Every mailing id is positive: the range adds nothing but lets both servers count from the
        # (mailing_id, status) index instead of reading every message.
        pipeline = [{"$match": {"mailing_id": {"$gte": 0}}}, {"$group": {"_id": "$status", "n": {"$sum": 1}}}]
        async for row in await self._messages.aggregate(pipeline):
            counts[row["_id"]] = row["n"]
        return counts

    async def sent_per_interval(self, start: datetime, step: timedelta, count: int) -> list[tuple[datetime, int]]:
        """Messages sent in each of `count` intervals of length `step` from `start`.

        One indexed count per interval, all at once: FerretDB implements no date operators in $group, and a
        dashboard asks for a few dozen intervals at most.
        """
        begins = [start + step * i for i in range(count + 1)]
        sent = await asyncio.gather(*(
            self._messages.count_documents({"sent_at": {"$gte": begin, "$lt": end}})
            for begin, end in itertools.pairwise(begins)
        ))
        return list(zip(begins[:-1], sent, strict=True))
