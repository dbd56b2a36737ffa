"""Mailings, and the planning state that lets any worker pick up where another stopped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta
from typing import Any

from pymongo import ReturnDocument

from herald.domain.models import ClientFilter, Mailing, SendWindow
from herald.errors import Conflict, NotFound
from herald.store.db import Database, IdSequence, insert_with_new_id

LIVE = {"deleted_at": None}


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def _window_doc(window: SendWindow | None) -> dict[str, str] | None:
    return None if window is None else {"start": _hhmm(window.start), "end": _hhmm(window.end)}


def _filter_doc(client_filter: ClientFilter) -> dict[str, list[str]]:
    return {"operator_codes": list(client_filter.operator_codes), "tags": list(client_filter.tags)}


def to_doc(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Domain values (ClientFilter, SendWindow) to their stored form; other fields pass as they are."""
    doc = dict(fields)
    if "filter" in doc:
        doc["filter"] = _filter_doc(doc["filter"])
    if "send_window" in doc:
        doc["send_window"] = _window_doc(doc["send_window"])
    return doc


def _mailing(doc: Mapping[str, Any]) -> Mailing:
    window = doc.get("send_window")
    stored_filter = doc.get("filter") or {}
    return Mailing(
        id=doc["_id"],
        text=doc["text"],
        start_at=doc["start_at"],
        end_at=doc["end_at"],
        filter=ClientFilter(tuple(stored_filter.get("operator_codes", ())), tuple(stored_filter.get("tags", ()))),
        send_window=None
        if window is None
        else SendWindow(time.fromisoformat(window["start"]), time.fromisoformat(window["end"])),
        created_at=doc.get("created_at"),
        updated_at=doc.get("updated_at"),
        paused_at=doc.get("paused_at"),
    )


def _not_found(mailing_id: int) -> NotFound:
    return NotFound(f"mailing {mailing_id} not found")


# Planning starts over: the planner streams the audience again (inserts are idempotent).
_REPLAN = {"planned_at": None, "plan_cursor": 0, "plan_owner": None, "plan_lease_until": None}


class MailingStore:
    def __init__(self, db: Database) -> None:
        self._col = db.mailings
        # Below 2**30: a message id holds the mailing id and the client id (see store.messages).
        self._ids = IdSequence(db, "mailings", limit=2**30 - 1)

    async def create(self, fields: Mapping[str, Any], now: datetime) -> Mailing:
        doc = {
            **to_doc(fields),
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
            "closed_at": None,
            **_REPLAN,
        }
        mailing_id = await insert_with_new_id(self._col, self._ids, doc)
        return _mailing({"_id": mailing_id, **doc})

    async def get(self, mailing_id: int) -> Mailing:
        doc = await self._col.find_one({"_id": mailing_id, **LIVE})
        if doc is None:
            raise _not_found(mailing_id)
        return _mailing(doc)

    async def page(self, *, after: int | None, limit: int) -> list[Mailing]:
        query: dict[str, Any] = dict(LIVE)
        if after is not None:
            query["_id"] = {"$gt": after}
        return [_mailing(doc) async for doc in self._col.find(query).sort("_id", 1).limit(limit)]

    async def by_ids(self, ids: Iterable[int]) -> dict[int, Mailing]:
        return {doc["_id"]: _mailing(doc) async for doc in self._col.find({"_id": {"$in": list(ids)}, **LIVE})}

    async def update(self, current: Mailing, changes: Mapping[str, Any], now: datetime, *, replan: bool) -> Mailing:
        """Apply changes to the version the caller read; a concurrent edit in between is a Conflict."""
        update: dict[str, Any] = {**to_doc(changes), "updated_at": now}
        if replan:
            update.update(_REPLAN)
        if "end_at" in changes or "start_at" in changes:
            update["closed_at"] = None  # the closer looks at it again against the new times
        doc = await self._col.find_one_and_update(
            {"_id": current.id, "updated_at": current.updated_at, **LIVE},
            {"$set": update},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            await self.get(current.id)  # NotFound if it was deleted meanwhile
            raise Conflict(f"mailing {current.id} was changed by another request; read it again and retry")
        return _mailing(doc)

    async def delete(self, mailing_id: int, now: datetime) -> Mailing:
        doc = await self._col.find_one_and_update(
            {"_id": mailing_id, **LIVE}, {"$set": {"deleted_at": now, "plan_owner": None}}
        )
        if doc is None:
            raise _not_found(mailing_id)
        return _mailing(doc)

    async def set_paused(self, mailing_id: int, paused_at: datetime | None, now: datetime) -> tuple[Mailing, bool]:
        """Pause (at `paused_at`) or resume (None) a mailing: returns it, and whether it changed (False when it was
        paused, or running, already)."""
        was = {"paused_at": None} if paused_at is not None else {"paused_at": {"$ne": None}}
        doc = await self._col.find_one_and_update(
            {"_id": mailing_id, **LIVE, **was},
            {"$set": {"paused_at": paused_at, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return await self.get(mailing_id), False  # NotFound if it is not there
        return _mailing(doc), True

    async def is_paused(self, mailing_id: int) -> bool:
        return await self._col.find_one({"_id": mailing_id, "paused_at": {"$ne": None}}, {"_id": 1}) is not None

    async def running(self, now: datetime) -> list[Mailing]:
        """Mailings that have started and not ended: the ones a new or changed client may join."""
        query = {**LIVE, "start_at": {"$lte": now}, "end_at": {"$gt": now}}
        return [_mailing(doc) async for doc in self._col.find(query)]

    async def active_between(self, start: datetime, end: datetime) -> list[Mailing]:
        """Mailings that ran at some time in [start, end), in start order: the ones a daily report covers."""
        query = {**LIVE, "end_at": {"$gt": start}, "start_at": {"$lt": end}}
        return [_mailing(doc) async for doc in self._col.find(query).sort([("start_at", 1), ("_id", 1)])]

    # Planning: a lease on the mailing document lets several workers share the work without doing it twice.

    async def claim_planning(self, owner: str, now: datetime, lease_s: float) -> tuple[Mailing, int] | None:
        """Take one started, unplanned mailing whose planning nobody holds; returns it with its cursor."""
        doc = await self._col.find_one_and_update(
            {
                "planned_at": None,
                "start_at": {"$lte": now},
                "end_at": {"$gt": now},
                **LIVE,
                "$or": [{"plan_lease_until": None}, {"plan_lease_until": {"$lte": now}}],
            },
            {"$set": {"plan_owner": owner, "plan_lease_until": now + timedelta(seconds=lease_s)}},
            sort=[("start_at", 1)],
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else (_mailing(doc), int(doc.get("plan_cursor") or 0))

    async def save_plan_progress(self, mailing_id: int, owner: str, cursor: int, now: datetime, lease_s: float) -> bool:
        """Record how far planning got; False if the lease was lost (the mailing changed or another took it)."""
        result = await self._col.update_one(
            {"_id": mailing_id, "plan_owner": owner, **LIVE},
            {"$set": {"plan_cursor": cursor, "plan_lease_until": now + timedelta(seconds=lease_s)}},
        )
        return result.matched_count == 1

    async def finish_planning(self, mailing_id: int, owner: str, now: datetime) -> bool:
        result = await self._col.update_one(
            {"_id": mailing_id, "plan_owner": owner, **LIVE},
            {"$set": {"planned_at": now, "plan_owner": None, "plan_lease_until": None}},
        )
        return result.matched_count == 1

    async def release_planning(self, owner: str) -> None:
        await self._col.update_many({"plan_owner": owner}, {"$set": {"plan_owner": None, "plan_lease_until": None}})

    # Closing: when a mailing ends, whatever was not delivered becomes expired.

    async def ended_unclosed(self, now: datetime, limit: int = 100) -> list[int]:
        cursor = self._col.find({"closed_at": None, "end_at": {"$lte": now}}, {"_id": 1}).limit(limit)
        return [doc["_id"] async for doc in cursor]

    async def mark_closed(self, mailing_id: int, now: datetime) -> bool:
        """Close a mailing whose end has passed; False if it is not ended any more (its end moved later)."""
        result = await self._col.update_one(
            {"_id": mailing_id, "closed_at": None, "end_at": {"$lte": now}}, {"$set": {"closed_at": now}}
        )
        return result.matched_count == 1

    async def ends_by(self, mailing_id: int, when: datetime) -> bool:
        return await self._col.find_one({"_id": mailing_id, "end_at": {"$lte": when}}, {"_id": 1}) is not None
