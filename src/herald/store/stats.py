"""Statistics: message counts by status, counted by the database."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from herald.domain.models import MessageStatus
from herald.store.db import Database

StatusCounts = dict[str, int]


def empty_counts() -> StatusCounts:
    return {status.value: 0 for status in MessageStatus}


def with_total(counts: StatusCounts) -> dict[str, Any]:
    return {"total": sum(counts.values()), "by_status": counts}


# The key of the counts over all messages, beside the mailing ids.
ALL = None


def consecutive_runs(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted ids as runs of consecutive ones, (first, last) each: a page of mailings is one run or a few."""
    runs: list[list[int]] = []
    for i in sorted(set(ids)):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return [(first, last) for first, last in runs]


class StatsStore:
    """Counts by status, counted by the database at most `max_age_s` ago.

    Counting reads an index entry per message, tens of milliseconds for a mailing of 100,000 messages. A reader that
    asks again within `max_age_s` (a dashboard polls every second) gets the same count, and readers that ask at
    once share one count: the database counts a mailing at most once per `max_age_s`, however many people look.
    """

    def __init__(
        self, db: Database, *, max_age_s: float = 0.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._messages = db.messages
        self._max_age_s = max_age_s
        self._monotonic = monotonic
        self._counted: dict[int | None, tuple[float, asyncio.Future[StatusCounts]]] = {}  # key -> (when, counts)

    async def by_mailing(self, mailing_ids: Iterable[int]) -> dict[int, StatusCounts]:
        """Counts by status for each mailing; a mailing with no messages gets zeros."""
        ids = set(mailing_ids)
        futures = self._recent(ids)
        for first, last in consecutive_runs(ids - futures.keys()):
            futures.update(self._start({i: i for i in range(first, last + 1)}, self._count_run(first, last)))
        # Shielded: a reader that gives up must not cancel the count that others wait for.
        return {mailing_id: dict(await asyncio.shield(futures[mailing_id])) for mailing_id in ids}

    async def overall(self) -> StatusCounts:
        futures = self._recent({ALL})
        if ALL not in futures:
            futures.update(self._start({ALL: ALL}, self._count_all()))
        return dict(await asyncio.shield(futures[ALL]))

    def _recent(self, keys: set[int | None]) -> dict[int | None, asyncio.Future[StatusCounts]]:
        """The counts of these keys that are being counted now, or were counted recently enough."""
        now = self._monotonic()
        return {
            key: counted[1]
            for key in keys
            if (counted := self._counted.get(key)) is not None and now - counted[0] <= self._max_age_s
        }

    def _start(
        self, keys: dict[int | None, int | None], counting: Awaitable[dict[int | None, StatusCounts]]
    ) -> dict[int | None, asyncio.Future[StatusCounts]]:
        """Count these keys once for everyone who asks meanwhile; a failed count is not kept."""
        loop = asyncio.get_running_loop()
        futures = {key: loop.create_future() for key in keys}
        now = self._monotonic()
        for key in [key for key, (at, done) in self._counted.items() if now - at > self._max_age_s and done.done()]:
            del self._counted[key]
        for key, future in futures.items():
            self._counted[key] = (now, future)

        async def run() -> None:
            try:
                counts = await counting
            except BaseException as exc:
                for key, future in futures.items():
                    self._counted.pop(key, None)
                    future.set_exception(exc)
                    future.exception()  # retrieved here: a reader that gave up must not leave it unseen
                raise
            for key, future in futures.items():
                future.set_result(counts.get(key, empty_counts()))

        task = asyncio.ensure_future(run())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return futures

    async def _count_run(self, first: int, last: int) -> dict[int | None, StatusCounts]:
        """The mailings with ids from `first` to `last`: a range the database reads once, from the
        (mailing_id, status) index alone; an $in would need a sort of every message by mailing and status."""
        counts: dict[int | None, StatusCounts] = {}
        async for (mailing_id, status), n in self._count({"$gte": first, "$lte": last}):
            counts.setdefault(mailing_id, empty_counts())[status] = n
        return counts

    async def _count_all(self) -> dict[int | None, StatusCounts]:
        counts = empty_counts()
        async for (_, status), n in self._count({"$gte": 0}):  # every mailing id is positive
            counts[status] += n
        return {ALL: counts}

    async def _count(self, mailing_ids: dict[str, int]) -> AsyncIterator[tuple[tuple[int, str], int]]:
        """Messages by mailing and status, for the mailings in a range of ids, counted by the database."""
        pipeline = [
            {"$match": {"mailing_id": mailing_ids}},
            {"$group": {"_id": {"mailing_id": "$mailing_id", "status": "$status"}, "n": {"$sum": 1}}},
        ]
        async for row in await self._messages.aggregate(pipeline):
            yield (row["_id"]["mailing_id"], row["_id"]["status"]), row["n"]

    async def sent_per_interval(self, start: datetime, step: timedelta, count: int) -> list[tuple[datetime, int]]:
        """Messages sent in each of `count` intervals of length `step` from `start`.

        One indexed count per interval, all at once: FerretDB implements no date operators in $group, and a
        dashboard asks for a few dozen intervals at most.
        """
        begins = [start + step * i for i in range(count + 1)]
        sent = await asyncio.gather(
            *(
                self._messages.count_documents({"sent_at": {"$gte": begin, "$lt": end}})
                for begin, end in itertools.pairwise(begins)
            )
        )
        return list(zip(begins[:-1], sent, strict=True))
