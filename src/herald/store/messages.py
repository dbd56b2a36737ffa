"""The messages collection is the persistent outbox: planning inserts, dispatchers claim with a lease and settle."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pymongo import UpdateMany

from herald.domain.models import Message, MessageStatus
from herald.store.db import Database, bulk_write, insert_new

PENDING, SENDING = MessageStatus.PENDING.value, MessageStatus.SENDING.value
CLIENT_ID_BITS = 32


# A scrape counts due messages up to this many: past it the backlog is "huge" and counting further costs.
BACKLOG_COUNT_CAP = 1_000_000


def _due(now: datetime) -> dict[str, Any]:
    """Messages a dispatcher may claim now: pending ones whose time has come, sending ones whose lease ran out."""
    return {"status": {"$in": [PENDING, SENDING]}, "due_at": {"$lte": now}}


def message_id(mailing_id: int, client_id: int) -> int:
    """The one message of a client in a mailing has a fixed id (client ids stay below 2**32, mailing ids 2**31)."""
    return mailing_id << CLIENT_ID_BITS | client_id


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


def _error_field(error: str | None) -> dict[str, str]:
    """An outcome without an error of its own keeps the last one recorded."""
    return {} if error is None else {"last_error": error}


class Settle:
    """Settlements for the messages of one claim."""

    def __init__(self, token: str) -> None:
        self._token = token

    def _of(self, message_id: int, give_back_attempt: bool = False, expired_at_end: datetime | None = None,
            **fields: Any) -> Settlement:
        return Settlement(self._token, message_id, tuple(sorted(fields.items())), give_back_attempt, expired_at_end)

    def sent(self, message_id: int) -> Settlement:
        return self._of(message_id, status="sent", sent_at=RECORDED_AT, due_at=None, last_error=None)

    def retry(self, message_id: int, due_at: datetime, error: str) -> Settlement:
        return self._of(message_id, status=PENDING, due_at=due_at, last_error=error)

    def wait(self, message_id: int, due_at: datetime) -> Settlement:
        """Not attempted after all (outside the send window, or not started): the claim's attempt is given back."""
        return self._of(message_id, give_back_attempt=True, status=PENDING, due_at=due_at)

    def expired(self, message_id: int, end_at: datetime, error: str | None = None) -> Settlement:
        """Too late to send before `end_at`, the mailing's end as this worker read it."""
        return self._of(message_id, expired_at_end=end_at, status=MessageStatus.EXPIRED.value, due_at=None,
                        **_error_field(error))

    def final(self, message_id: int, status: MessageStatus, error: str | None = None) -> Settlement:
        return self._of(message_id, status=status.value, due_at=None, **_error_field(error))


class MessageStore:
    def __init__(self, db: Database) -> None:
        self._col = db.messages
        self._db = db

    async def insert_planned(self, mailing_id: int, due: Iterable[tuple[int, datetime]], now: datetime) -> int:
        """Create pending messages for (client_id, due_at) pairs; a pair that has its message already is skipped.

        The id is a function of mailing and client, so planning is idempotent by primary key: interrupted and
        resumed, or run by two workers at once, it still makes one message per client.
        """
        due = list(due)
        if not due:
            return 0
        docs = [
            {"_id": message_id(mailing_id, client_id), "mailing_id": mailing_id, "client_id": client_id,
             "status": PENDING, "created_at": now, "sent_at": None, "attempts": 0, "last_error": None,
             "due_at": due_at, "lease_owner": None, "claim_seq": 0}
            for client_id, due_at in due
        ]
        taken = await insert_new(self._col, docs)
        if taken:
            # Some clients had a message already. One cancelled because the client stopped matching the
            # filter comes back: the client is in the audience again.
            await self._col.update_many(
                {"_id": {"$in": [doc["_id"] for doc in docs]}, "status": "cancelled"},
                {"$set": {"status": PENDING, "due_at": now}},
            )
        return len(docs) - len(taken)

    async def claim(self, limit: int, now: datetime, lease_s: float) -> Claim | None:
        """Reserve up to `limit` due messages: pending ones whose time has come, and sending ones whose lease ran out.

        Each claim of each message has a key, "<message id>:<claim number>", inserted into `claims` under a
        unique _id: whichever worker inserts it holds that attempt, on any MongoDB-compatible server (a
        conditional update alone is not enough on FerretDB 1.x, which reads and then writes without re-checking
        the filter). Three round trips whatever the batch size. Attempts are counted here, so a worker that
        crashes mid-send cannot loop forever.
        """
        window = [doc async for doc in self._col.find(_due(now)).sort("due_at", 1).limit(2 * limit)]
        if not window:
            return None
        # Workers that look at once see the same head of the queue: each tries a random half of a window twice
        # the batch, so they mostly take different messages instead of all racing for the same ones.
        docs = random.sample(window, limit) if len(window) > limit else window
        candidates = [_message(doc) for doc in docs]
        # Claims count up and never go back (attempts do, when a claimed message was not sent after all).
        claim_seqs = [int(doc["claim_seq"]) for doc in docs]
        keys = [{"_id": f"{m.id}:{seq + 1}", "at": now} for m, seq in zip(candidates, claim_seqs, strict=True)]
        lost = await insert_new(self._db.claims, keys)
        won = sorted(
            ((m, seq) for i, (m, seq) in enumerate(zip(candidates, claim_seqs, strict=True)) if i not in lost),
            key=lambda pair: pair[0].id,
        )
        if not won:
            return None
        token = uuid.uuid4().hex
        lease_until = now + timedelta(seconds=lease_s)
        # The keys make these writes exclusive. Messages with the same counts share one update_many.
        same_counts: dict[tuple[int, int], list[int]] = defaultdict(list)
        for m, seq in won:
            same_counts[(m.attempts, seq)].append(m.id)
        await bulk_write(self._col, [
            UpdateMany({"_id": {"$in": ids}, "claim_seq": seq},
                       {"$set": {"status": SENDING, "lease_owner": token, "due_at": lease_until,
                                 "attempts": attempts + 1, "claim_seq": seq + 1}})
            for (attempts, seq), ids in same_counts.items()
        ])
        claimed = [replace(m, status=MessageStatus.SENDING, attempts=m.attempts + 1, due_at=lease_until)
                   for m, _ in won]
        return Claim(token, lease_until, claimed)

    async def backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """How many messages are due, and the due time of the longest-waiting one: one count, one indexed find."""
        count, oldest = await asyncio.gather(
            self._col.count_documents(_due(now), limit=BACKLOG_COUNT_CAP),
            self._col.find_one(_due(now), {"due_at": 1}, sort=[("due_at", 1)]),
        )
        return count, None if oldest is None else oldest["due_at"]

    async def sweep_claim_keys(self, older_than: datetime) -> int:
        """Drop claim keys nobody can contest any more (MongoDB could use a TTL index; FerretDB 1.x has none)."""
        result = await self._db.claims.delete_many({"at": {"$lt": older_than}})
        return result.deleted_count

    async def settle(self, settlements: Iterable[Settlement], now: datetime) -> int:
        """Write outcomes, one update_many per claim and identical change: a flush of hundreds is a few statements."""
        groups: dict[tuple[str, tuple[tuple[str, Any], ...], bool], list[int]] = defaultdict(list)
        for s in settlements:
            groups[(s.token, s.fields, s.give_back_attempt)].append(s.message_id)
        ops = []
        for (token, fields, give_back_attempt), ids in groups.items():
            update: dict[str, Any] = {"$set": {
                **{key: now if value is RECORDED_AT else value for key, value in fields}, "lease_owner": None,
            }}
            if give_back_attempt:
                update["$inc"] = {"attempts": -1}
            ops.append(UpdateMany({"_id": {"$in": ids}, "lease_owner": token, "status": SENDING}, update))
        return await bulk_write(self._col, ops)

    async def release(self, tokens: Iterable[str], now: datetime) -> int:
        """Give claimed, unsent messages back to the outbox at once, their attempt not counted."""
        result = await self._col.update_many(
            {"lease_owner": {"$in": list(tokens)}, "status": SENDING},
            {"$set": {"status": PENDING, "due_at": now, "lease_owner": None}, "$inc": {"attempts": -1}},
        )
        return result.modified_count

    async def cancel_pending(self, *, mailing_id: int | None = None, client_ids: Iterable[int] | None = None,
                             client_id: int | None = None) -> int:
        """Cancel messages that no dispatcher holds; held ones are settled by their dispatcher, which re-checks."""
        query: dict[str, Any] = {"status": PENDING}
        if mailing_id is not None:
            query["mailing_id"] = mailing_id
        if client_id is not None:
            query["client_id"] = client_id
        if client_ids is not None:
            query["client_id"] = {"$in": list(client_ids)}
        result = await self._col.update_many(query, {"$set": {"status": "cancelled", "due_at": None}})
        return result.modified_count

    async def expire_pending(self, mailing_id: int) -> int:
        result = await self._col.update_many(
            {"mailing_id": mailing_id, "status": PENDING}, {"$set": {"status": "expired", "due_at": None}}
        )
        return result.modified_count

    async def reopen_expired(self, mailing_id: int, now: datetime) -> int:
        """The mailing's end moved later: what expired gets another chance."""
        result = await self._col.update_many(
            {"mailing_id": mailing_id, "status": "expired"}, {"$set": {"status": PENDING, "due_at": now}}
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
        self, *, limit: int, after: int | None = None, mailing_id: int | None = None, client_id: int | None = None,
        status: str | None = None,
    ) -> list[Message]:
        query: dict[str, Any] = {}
        for key, value in (("mailing_id", mailing_id), ("client_id", client_id), ("status", status)):
            if value is not None:
                query[key] = value
        if after is not None:
            query["_id"] = {"$gt": after}
        return [_message(doc) async for doc in self._col.find(query).sort("_id", 1).limit(limit)]
