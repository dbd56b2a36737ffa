"""The client directory."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError, OperationFailure

from herald.domain.filters import to_query
from herald.domain.models import Client, ClientFilter
from herald.errors import Conflict, NotFound
from herald.store.db import Database, IdSequence, insert_new, insert_with_new_id, is_duplicate_key
from herald.store.messages import CLIENT_ID_BITS


def _client(doc: Mapping[str, Any]) -> Client:
    return Client(
        id=doc["_id"],
        phone=doc["phone"],
        operator_code=doc["operator_code"],
        tag=doc.get("tag"),
        timezone=doc["timezone"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def _duplicate_phone(phone: str | None) -> Conflict:
    return Conflict(f"a client with phone {phone} already exists", phone=["Already taken by another client."])


class ClientStore:
    def __init__(self, db: Database) -> None:
        self._col = db.clients
        # Reserved a hundred at a time: one round trip to the sequence per hundred new clients. Below 2**32, as
        # message ids (mailing id and client id in one integer) require.
        self._ids = IdSequence(db, "clients", block=100, limit=2**CLIENT_ID_BITS - 1)

    async def create(self, fields: Mapping[str, Any], now: datetime) -> Client:
        doc = {**fields, "created_at": now, "updated_at": now}

        async def phone_taken() -> bool:
            return await self._col.find_one({"phone": fields["phone"]}, {"_id": 1}) is not None

        try:
            client_id = await insert_with_new_id(self._col, self._ids, doc, phone_taken)
        except DuplicateKeyError:
            raise _duplicate_phone(fields.get("phone")) from None
        return _client({"_id": client_id, **doc})

    async def get(self, client_id: int) -> Client:
        doc = await self._col.find_one({"_id": client_id})
        if doc is None:
            raise NotFound(f"client {client_id} not found")
        return _client(doc)

    async def update(self, client_id: int, changes: Mapping[str, Any], now: datetime) -> Client:
        try:
            doc = await self._col.find_one_and_update(
                {"_id": client_id},
                {"$set": {**changes, "updated_at": now}},
                return_document=ReturnDocument.AFTER,
            )
        except OperationFailure as exc:
            if not is_duplicate_key(exc):
                raise
            raise _duplicate_phone(changes.get("phone")) from None
        if doc is None:
            raise NotFound(f"client {client_id} not found")
        return _client(doc)

    async def delete(self, client_id: int) -> Client:
        doc = await self._col.find_one_and_delete({"_id": client_id})
        if doc is None:
            raise NotFound(f"client {client_id} not found")
        return _client(doc)

    async def page(
        self,
        *,
        after: int | None,
        limit: int,
        tag: str | None = None,
        operator_code: str | None = None,
        phone_prefix: str | None = None,
    ) -> list[Client]:
        query: dict[str, Any] = {}
        if tag is not None:
            query["tag"] = tag
        if operator_code is not None:
            query["operator_code"] = operator_code
        if phone_prefix:
            query["phone"] = {"$regex": f"^{re.escape(phone_prefix)}"}
        if after is not None:
            query["_id"] = {"$gt": after}
        return [_client(doc) async for doc in self._col.find(query).sort("_id", 1).limit(limit)]

    async def by_phones(self, phones: Iterable[str]) -> dict[str, Client]:
        return {doc["phone"]: _client(doc) async for doc in self._col.find({"phone": {"$in": list(phones)}})}

    async def insert_batch(self, rows: Sequence[Mapping[str, Any]], now: datetime) -> tuple[list[Client], set[int]]:
        """Insert new clients under consecutive fresh ids; returns those inserted, and the positions of the rows
        whose phone another client took meanwhile."""
        if not rows:
            return [], set()
        first = await self._ids.take(len(rows))
        docs = [{"_id": first + i, **row, "created_at": now, "updated_at": now} for i, row in enumerate(rows)]
        taken = await insert_new(self._col, docs)
        return [_client(doc) for i, doc in enumerate(docs) if i not in taken], taken

    async def update_batch(self, changes: Sequence[tuple[Client, Mapping[str, Any]]], now: datetime) -> list[Client]:
        """Apply each client's changes in one round trip; returns the clients as changed."""
        if not changes:
            return []
        await self._col.bulk_write(
            [UpdateOne({"_id": client.id}, {"$set": {**fields, "updated_at": now}}) for client, fields in changes],
            ordered=False,
        )
        return [replace(client, **fields, updated_at=now) for client, fields in changes]

    async def pages(
        self, *, tag: str | None = None, operator_code: str | None = None, size: int = 1000
    ) -> AsyncIterator[list[Client]]:
        """Every client (of a tag, an operator), a page at a time in id order: what an export streams."""
        after = None
        while page := await self.page(after=after, limit=size, tag=tag, operator_code=operator_code):
            yield page
            after = page[-1].id

    async def by_ids(self, ids: Iterable[int]) -> dict[int, Client]:
        return {doc["_id"]: _client(doc) async for doc in self._col.find({"_id": {"$in": list(ids)}})}

    async def audience_by_timezone(self, client_filter: ClientFilter) -> dict[str, int]:
        """How many clients match the filter, per timezone: a mailing's audience before it starts."""
        pipeline = [{"$match": to_query(client_filter)}, {"$group": {"_id": "$timezone", "n": {"$sum": 1}}}]
        rows = [(row["_id"], row["n"]) async for row in await self._col.aggregate(pipeline)]
        return dict(sorted(rows, key=lambda row: (-row[1], row[0])))

    async def audience_batch(self, client_filter: ClientFilter, *, after: int, limit: int) -> list[tuple[int, str]]:
        """The next `limit` matching clients after id `after`, as (id, timezone): what planning needs, no more."""
        query = {**to_query(client_filter), "_id": {"$gt": after}}
        cursor = self._col.find(query, {"timezone": 1}).sort("_id", 1).limit(limit)
        return [(doc["_id"], doc["timezone"]) async for doc in cursor]
