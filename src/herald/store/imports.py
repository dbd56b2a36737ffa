"""Client imports: each one's progress, kept by the process that runs it under a lease."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from herald.domain.models import ClientImport, ImportCounts, ImportStatus
from herald.errors import NotFound
from herald.store.db import Database, IdSequence, insert_with_new_id

# A process that stops (or dies) mid-import leaves its import running; once its lease has run out, the import
# is failed, with the line it reached.
LEASE_S = 60.0
STOPPED = "the process running the import stopped"


def _import(doc: Mapping[str, Any]) -> ClientImport:
    return ClientImport(
        id=doc["_id"],
        status=ImportStatus(doc["status"]),
        mode=doc["mode"],
        format=doc["format"],
        lines=doc["lines"],
        counts=ImportCounts(**doc["counts"]),
        errors=list(doc["errors"]),
        line=doc["line"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        detail=doc.get("detail"),
    )


class ImportStore:
    def __init__(self, db: Database) -> None:
        self._col = db.imports
        self._ids = IdSequence(db, "imports")

    async def create(self, mode: str, kind: str, lines: int, owner: str, now: datetime) -> ClientImport:
        doc = {
            "status": ImportStatus.RUNNING.value,
            "mode": mode,
            "format": kind,
            "lines": lines,
            "counts": asdict(ImportCounts()),
            "errors": [],
            "line": 0,
            "created_at": now,
            "updated_at": now,
            "detail": None,
            "owner": owner,
            "lease_until": now + timedelta(seconds=LEASE_S),
        }
        import_id = await insert_with_new_id(self._col, self._ids, doc)
        return _import({"_id": import_id, **doc})

    async def save(self, done: ClientImport, owner: str, now: datetime) -> None:
        """Record progress, or the end (`done.status` not running), of an import this process runs."""
        await self._col.update_one(
            {"_id": done.id, "owner": owner},
            {
                "$set": {
                    "status": done.status.value,
                    "counts": asdict(done.counts),
                    "errors": done.errors,
                    "line": done.line,
                    "detail": done.detail,
                    "updated_at": now,
                    "lease_until": now + timedelta(seconds=LEASE_S),
                }
            },
        )

    async def get(self, import_id: int, now: datetime) -> ClientImport:
        doc = await self._col.find_one({"_id": import_id})
        if doc is None:
            raise NotFound(f"import {import_id} not found")
        if doc["status"] == ImportStatus.RUNNING.value and doc["lease_until"] <= now:
            # Its process is gone: say so, once. The lease in the filter keeps a live process's progress.
            await self._col.update_one(
                {"_id": import_id, "status": ImportStatus.RUNNING.value, "lease_until": doc["lease_until"]},
                {"$set": {"status": ImportStatus.FAILED.value, "detail": STOPPED, "updated_at": now}},
            )
            doc = await self._col.find_one({"_id": import_id}) or doc
        return _import(doc)
