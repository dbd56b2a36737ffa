"""The messages collection is the persistent outbox: planning inserts, dispatchers claim with a lease and settle."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pymongo import UpdateMany

from herald.domain.models import Message, MessageStatus
from herald.store.db import Database, IdSequence, insert_new

PENDING, SENDING = MessageStatus.PENDING.value, MessageStatus.SENDING.value
CLIENT_ID_BITS = 32


# Claim rounds in a row that may find every message read taken by another worker before the claim gives up.
CLAIM_TRIES = 3

# A scrape counts due messages up to this many: past it the backlog is "huge" and counting further costs.
BACKLOG_COUNT_CAP = 1_000_000


def _due(now: datetime) -> dict[str, Any]:
    """Messages a dispatcher may claim now: pending ones whose time has come, sending ones whose lease ran out.

    Only those two states have a due time, so one range on one field finds them: an index scan that reads the
    messages due first and stops, on MongoDB and on Herald's FerretDB alike.
    """
    return {"due_at": {"$lte": now}}


# Where a message of a paused mailing keeps its due time: without a due_at, no claim finds it.
HELD_DUE_AT = "held_due_at"


def _due_or_held(due_at: datetime, held: bool) -> dict[str, datetime | None]:
    return {"due_at": None, HELD_DUE_AT: due_at} if held else {"due_at": due_at}


def message_id(mailing_id: int, client_id: int) -> int:
    """The one message of a client in a mailing has a fixed id (client ids stay below 2**32, mailing ids 2**30)."""
    return mailing_id << CLIENT_ID_BITS | client_id


# Mailing ids stay below 2**30, so every message id is below 2**62; test sends count up from there.
MAILING_ID_BITS = 30
TEST_SEND_IDS = 1 << (MAILING_ID_BITS + CLIENT_ID_BITS)


def _of_mailing(mailing_id: int, after: int | None) -> dict[str, Any]:
    """A mailing's messages after an id, by _id alone: its message ids are one contiguous range."""
    first = message_id(mailing_id, 0)
    return {"$gt": first - 1 if after is None else max(after, first - 1), "$lt": message_id(mailing_id + 1, 0)}


def _message(doc: Mapping[str, Any]) -> Message:
    return Message(
        id=doc["_id"],
        mailing_id=doc["mailing_id"],
        client_id=doc["client_id"],
        status=MessageStatus(doc["status"]),
        created_at=doc["created_at"],
        sent_at=doc.get("sent_at"),
        attempts=doc.get("attempts", 0),
        last_error=doc.get("last_error"),
        due_at=doc.get("due_at"),
    )


@dataclass(frozen=True)
class Claim:
    """A batch of messages reserved for one dispatcher until `lease_until`; `token` proves the reservation."""

    token: str
    lease_until: datetime
    messages: list[Message]


# Stands for "the time the outcome is written" in a settlement; `settle` puts the time in.
RECORDED_AT = object()


@dataclass(frozen=True)
class Settlement:
    """The outcome of one claimed message, written only while the claim's token still holds it."""

    token: str
    message_id: int
    fields: tuple[tuple[str, Any], ...]
    give_back_attempt: bool = False
    expired_at_end: datetime | None = None  # for an expiry: the mailing's end it was decided on

    @property
    def mailing_id(self) -> int:
        return self.message_id >> CLIENT_ID_BITS

    @property
    def status(self) -> str:
        """The status the message gets."""
        return str(dict(self.fields)["status"])

    @property
    def held(self) -> bool:
        """Whether it holds the message for its paused mailing."""
        return HELD_DUE_AT in dict(self.fields)


def _error_field(error: str | None) -> dict[str, str]:
    """An outcome without an error of its own keeps the last one recorded."""
    return {} if error is None else {"last_error": error}


class Settle:
    """Settlements for the messages of one claim."""

    def __init__(self, token: str) -> None:
        self._token = token

    def _of(
        self, message_id: int, give_back_attempt: bool = False, expired_at_end: datetime | None = None, **fields: Any
    ) -> Settlement:
        return Settlement(self._token, message_id, tuple(sorted(fields.items())), give_back_attempt, expired_at_end)

    def sent(self, message_id: int) -> Settlement:
        return self._of(message_id, status="sent", sent_at=RECORDED_AT, due_at=None, last_error=None)

    def retry(self, message_id: int, due_at: datetime, error: str, *, counted: bool = True) -> Settlement:
        """Attempted and to be tried again; an attempt not `counted` is given back (the API was down, not it)."""
        return self._of(message_id, give_back_attempt=not counted, status=PENDING, due_at=due_at, last_error=error)

    def wait(self, message_id: int, due_at: datetime) -> Settlement:
        """Not attempted after all (outside the send window, or not started): the claim's attempt is given back."""
        return self._of(message_id, give_back_attempt=True, status=PENDING, due_at=due_at)

    def hold(self, message_id: int, due_at: datetime) -> Settlement:
        """Not attempted: its mailing is paused. It is due at `due_at` once the mailing resumes."""
        return self._of(message_id, give_back_attempt=True, status=PENDING, due_at=None, held_due_at=due_at)

    def expired(self, message_id: int, end_at: datetime, error: str | None = None) -> Settlement:
        """Too late to send before `end_at`, the mailing's end as this worker read it."""
        return self._of(
            message_id, expired_at_end=end_at, status=MessageStatus.EXPIRED.value, due_at=None, **_error_field(error)
        )

    def final(self, message_id: int, status: MessageStatus, error: str | None = None) -> Settlement:
        return self._of(message_id, status=status.value, due_at=None, **_error_field(error))


class MessageStore:
    def __init__(self, db: Database) -> None:
        self._col = db.messages
        self._test_sends = IdSequence(db, "test_sends")

    async def test_send_id(self) -> int:
        """A msgId for a test send: above every message's, and never the same twice."""
        return TEST_SEND_IDS + await self._test_sends.next()

    async def insert_planned(
        self, mailing_id: int, due: Iterable[tuple[int, datetime]], now: datetime, *, held: bool = False
    ) -> int:
        """Create pending messages for (client_id, due_at) pairs; a pair that has its message already is skipped.
        Messages of a paused mailing are `held`: due only once it resumes.

        The id is a function of mailing and client, so planning is idempotent by primary key: interrupted and
        resumed, or run by two workers at once, it still makes one message per client.
        """
        due = list(due)
        if not due:
            return 0
        docs = [
            {
                "_id": message_id(mailing_id, client_id),
                "mailing_id": mailing_id,
                "client_id": client_id,
                "status": PENDING,
                "created_at": now,
                "sent_at": None,
                "attempts": 0,
                "last_error": None,
                "lease_owner": None,
                **_due_or_held(due_at, held),
            }
            for client_id, due_at in due
        ]
        taken = await insert_new(self._col, docs)
        if taken:
            # Some clients had a message already. One cancelled because the client stopped matching the
            # filter comes back: the client is in the audience again.
            await self._col.update_many(
                {"_id": {"$in": [doc["_id"] for doc in docs]}, "status": "cancelled"},
                {"$set": {"status": PENDING, **_due_or_held(now, held)}},
            )
        return len(docs) - len(taken)

    async def claim(self, limit: int, now: datetime, lease_s: float, *, unfailed_first: bool = False) -> Claim | None:
        """Reserve up to `limit` due messages: pending ones whose time has come, and sending ones whose lease ran out.

        Two round trips when no other worker competes: read the messages due first, then take them with one
        conditional update that gives them this claim's token. The update is atomic per message (on FerretDB
        through patches/ferretdb/0005), so of several workers only one takes a message. A worker that took fewer
        than it read asks which; one that took none (another was quicker) looks again at once. Attempts are
        counted here, so a worker that crashes mid-send cannot loop forever. With `unfailed_first`, due messages
        that have not failed yet come before the others.
        """
        for _ in range(CLAIM_TRIES):
            window = await self._due_first(now, limit, {"last_error": None}) if unfailed_first else []
            window = window or await self._due_first(now, limit)
            if not window:
                return None
            token = uuid.uuid4().hex
            lease_until = now + timedelta(seconds=lease_s)
            # The attempt count read is part of the condition, so the count written is the one read plus one.
            # Messages with the same count share one update_many.
            same_attempts: dict[int, list[int]] = defaultdict(list)
            for doc in window:
                same_attempts[doc["attempts"]].append(doc["_id"])
            taken = await self._col.bulk_write(
                [
                    UpdateMany(
                        {"_id": {"$in": ids}, "attempts": attempts, **_due(now)},
                        {
                            "$set": {"status": SENDING, "lease_owner": token, "due_at": lease_until},
                            "$inc": {"attempts": 1},
                        },
                    )
                    for attempts, ids in same_attempts.items()
                ],
                ordered=False,
            )
            if taken.modified_count == len(window):
                claimed = [
                    replace(
                        _message(doc), status=MessageStatus.SENDING, attempts=doc["attempts"] + 1, due_at=lease_until
                    )
                    for doc in window
                ]
            elif taken.modified_count:
                ids = [doc["_id"] for doc in window]
                claimed = [_message(doc) async for doc in self._col.find({"_id": {"$in": ids}, "lease_owner": token})]
            else:
                continue
            return Claim(token, lease_until, claimed)
        return None

    async def _due_first(
        self, now: datetime, limit: int, also: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return (
            await self._col.find({**_due(now), **(also or {})})
            .sort("due_at", 1)
            .limit(limit)
            .batch_size(limit)
            .to_list()
        )

    async def backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """How many messages are due, and the due time of the longest-waiting one: one count, one indexed find."""
        counted, oldest = await asyncio.gather(
            # The count command, not count_documents: its limit keeps the count cheap on FerretDB too.
            self._col.database.command("count", self._col.name, query=_due(now), limit=BACKLOG_COUNT_CAP),
            self._col.find_one(_due(now), {"due_at": 1}, sort=[("due_at", 1)]),
        )
        return int(counted["n"]), None if oldest is None else oldest["due_at"]

    async def settle(self, settlements: Iterable[Settlement], now: datetime) -> int:
        """Write outcomes, one update_many per claim and identical change: a flush of hundreds is a few statements."""
        groups: dict[tuple[str, tuple[tuple[str, Any], ...], bool], list[int]] = defaultdict(list)
        for s in settlements:
            groups[(s.token, s.fields, s.give_back_attempt)].append(s.message_id)
        ops = []
        for (token, fields, give_back_attempt), ids in groups.items():
            update: dict[str, Any] = {
                "$set": {
                    **{key: now if value is RECORDED_AT else value for key, value in fields},
                    "lease_owner": None,
                }
            }
            if give_back_attempt:
                update["$inc"] = {"attempts": -1}
            ops.append(UpdateMany({"_id": {"$in": ids}, "lease_owner": token, "status": SENDING}, update))
        if not ops:
            return 0
        return (await self._col.bulk_write(ops, ordered=False)).modified_count

    async def release(self, claims: Mapping[str, Iterable[int]], now: datetime) -> int:
        """Give claimed, unsent messages back to the outbox at once, their attempt not counted: for each claim
        token, the ids of its messages."""
        ids = [message_id for ids in claims.values() for message_id in ids]
        result = await self._col.update_many(
            {"_id": {"$in": ids}, "lease_owner": {"$in": list(claims)}, "status": SENDING},
            {"$set": {"status": PENDING, "due_at": now, "lease_owner": None}, "$inc": {"attempts": -1}},
        )
        return result.modified_count

    async def cancel_pending(
        self, *, mailing_id: int | None = None, client_id: int | None = None, ids: Iterable[int] | None = None
    ) -> int:
        """Cancel messages that no dispatcher holds; held ones are settled by their dispatcher, which re-checks."""
        query: dict[str, Any] = {"status": PENDING}
        if mailing_id is not None:
            query["mailing_id"] = mailing_id
        if client_id is not None:
            query["client_id"] = client_id
        if ids is not None:
            query["_id"] = {"$in": list(ids)}
        result = await self._col.update_many(query, {"$set": {"status": "cancelled", "due_at": None}})
        return result.modified_count

    async def expire_pending(self, mailing_id: int) -> int:
        result = await self._col.update_many(
            {"mailing_id": mailing_id, "status": PENDING}, {"$set": {"status": "expired", "due_at": None}}
        )
        return result.modified_count

    async def reopen_expired(self, mailing_id: int, now: datetime, *, held: bool = False) -> int:
        """The mailing's end moved later: what expired gets another chance."""
        result = await self._col.update_many(
            {"mailing_id": mailing_id, "status": "expired"}, {"$set": {"status": PENDING, **_due_or_held(now, held)}}
        )
        return result.modified_count

    async def retry_failed(self, mailing_id: int, now: datetime, *, held: bool = False) -> int:
        """Failed messages go back to the outbox with a fresh budget of attempts."""
        result = await self._col.update_many(
            {"mailing_id": mailing_id, "status": MessageStatus.FAILED.value},
            {"$set": {"status": PENDING, "attempts": 0, **_due_or_held(now, held)}},
        )
        return result.modified_count

    async def hold(self, mailing_id: int) -> int:
        """The mailing pauses: its pending messages keep their due time aside, so no dispatcher claims them."""
        result = await self._col.update_many(
            {"mailing_id": mailing_id, "status": PENDING, "due_at": {"$ne": None}}, {"$rename": {"due_at": HELD_DUE_AT}}
        )
        return result.modified_count

    async def release_held(self, mailing_id: int) -> int:
        """The mailing resumes: its held messages are due at the time they kept."""
        result = await self._col.update_many(
            {"mailing_id": mailing_id, "status": PENDING, HELD_DUE_AT: {"$ne": None}},
            {"$rename": {HELD_DUE_AT: "due_at"}},
        )
        return result.modified_count

    async def pending_batch(self, mailing_id: int, *, after: int, limit: int) -> list[tuple[int, int]]:
        """(message id, client id) of a mailing's pending messages, in id order from `after`."""
        cursor = (
            self._col.find({"mailing_id": mailing_id, "status": PENDING, "_id": {"$gt": after}}, {"client_id": 1})
            .sort("_id", 1)
            .limit(limit)
        )
        return [(doc["_id"], doc["client_id"]) async for doc in cursor]

    async def page(
        self,
        *,
        limit: int,
        after: int | None = None,
        mailing_id: int | None = None,
        client_id: int | None = None,
        status: str | None = None,
    ) -> list[Message]:
        query: dict[str, Any] = {}
        for key, value in (("client_id", client_id), ("status", status)):
            if value is not None:
                query[key] = value
        if mailing_id is not None:
            query["_id"] = _of_mailing(mailing_id, after)
            if status is not None:
                query["mailing_id"] = mailing_id  # for the (mailing_id, status, _id) index
        elif after is not None:
            query["_id"] = {"$gt": after}
        return [_message(doc) async for doc in self._col.find(query).sort("_id", 1).limit(limit)]
