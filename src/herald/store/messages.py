"""The messages collection is the persistent outbox: planning inserts, dispatchers claim with a lease and settle."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from herald.domain.models import Message, MessageStatus
from herald.store.db import Database, allocate_ids

PENDING, SENDING = MessageStatus.PENDING.value, MessageStatus.SENDING.value
DUPLICATE_KEY = 11000


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


class Settle:
    """Outcome writes for claimed messages; each applies only while the claim's token still holds the message."""

    def __init__(self, token: str) -> None:
        self._token = token

    def _op(self, message_id: int, fields: Mapping[str, Any], inc: Mapping[str, int] | None = None) -> UpdateOne:
        update: dict[str, Any] = {"$set": {**fields, "lease_owner": None}}
        if inc:
            update["$inc"] = dict(inc)
        return UpdateOne({"_id": message_id, "lease_owner": self._token, "status": SENDING}, update)

    def sent(self, message_id: int, now: datetime) -> UpdateOne:
        return self._op(message_id, {"status": "sent", "sent_at": now, "due_at": None, "last_error": None})

    def retry(self, message_id: int, due_at: datetime, error: str) -> UpdateOne:
        return self._op(message_id, {"status": PENDING, "due_at": due_at, "last_error": error})

    def wait(self, message_id: int, due_at: datetime) -> UpdateOne:
        """Not attempted after all (outside the send window, or not started): the claim's attempt is given back."""
        return self._op(message_id, {"status": PENDING, "due_at": due_at}, inc={"attempts": -1})

    def final(self, message_id: int, status: MessageStatus, error: str | None = None) -> UpdateOne:
        fields: dict[str, Any] = {"status": status.value, "due_at": None}
        if error is not None:
            fields["last_error"] = error
        return self._op(message_id, fields)


class MessageStore:
    def __init__(self, db: Database) -> None:
        self._col = db.messages
        self._db = db

    async def insert_planned(self, mailing_id: int, due: Iterable[tuple[int, datetime]], now: datetime) -> int:
        """Create pending messages for (client_id, due_at) pairs; pairs that already have one are skipped."""
        due = list(due)
        if not due:
            return 0
        ids = await allocate_ids(self._db, "messages", len(due))
        docs = [
            {"_id": message_id, "mailing_id": mailing_id, "client_id": client_id, "status": PENDING,
             "created_at": now, "sent_at": None, "attempts": 0, "last_error": None, "due_at": due_at,
             "lease_owner": None}
            for message_id, (client_id, due_at) in zip(ids, due, strict=True)
        ]
        try:
            await self._col.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(error["code"] != DUPLICATE_KEY for error in exc.details["writeErrors"]):
                raise
            # Some clients had a message already. One cancelled because the client stopped matching the
            # filter comes back: the client is in the audience again.
            await self._col.update_many(
                {"mailing_id": mailing_id, "client_id": {"$in": [client_id for client_id, _ in due]},
                 "status": "cancelled"},
                {"$set": {"status": PENDING, "due_at": now}},
            )
            return int(exc.details["nInserted"])
        return len(docs)

    async def claim(self, limit: int, now: datetime, lease_s: float) -> Claim | None:
        """Reserve up to `limit` due messages: pending ones whose time has come, and sending ones whose lease ran out.

        Three round trips whatever the batch size: pick candidate ids, take the ones still due under a fresh
        token (a single-document atomic update each, so two workers never hold one message), read back what
        this token got. Attempts are counted here, so a worker that crashes mid-send cannot loop forever.
        """
        due = {"status": {"$in": [PENDING, SENDING]}, "due_at": {"$lte": now}}
        candidates = [doc["_id"] async for doc in self._col.find(due, {"_id": 1}).sort("due_at", 1).limit(limit)]
        if not candidates:
            return None
        token = uuid.uuid4().hex
        lease_until = now + timedelta(seconds=lease_s)
        await self._col.update_many(
            {"_id": {"$in": candidates}, **due},
            {"$set": {"status": SENDING, "lease_owner": token, "due_at": lease_until}, "$inc": {"attempts": 1}},
        )
        messages = [_message(doc) async for doc in self._col.find({"lease_owner": token}).sort("_id", 1)]
        return Claim(token, lease_until, messages) if messages else None

    async def settle(self, ops: list[UpdateOne]) -> int:
        if not ops:
            return 0
        result = await self._col.bulk_write(ops, ordered=False)
        return result.modified_count

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
        self, *, after: int | None, limit: int, mailing_id: int | None = None, client_id: int | None = None,
        status: str | None = None,
    ) -> list[Message]:
        query: dict[str, Any] = {}
        for key, value in (("mailing_id", mailing_id), ("client_id", client_id), ("status", status)):
            if value is not None:
                query[key] = value
        if after is not None:
            query["_id"] = {"$gt": after}
        return [_message(doc) async for doc in self._col.find(query).sort("_id", 1).limit(limit)]
