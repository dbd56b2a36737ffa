"""The imports a process runs: each one reads its spooled file in batches, writes them, and records its progress."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace

from herald.clock import Clock
from herald.domain.models import ClientImport, ImportCounts, ImportStatus
from herald.imports.rows import Row, parse
from herald.imports.spool import Spooled
from herald.logs import log_context
from herald.service import Service
from herald.store.imports import STOPPED

log = logging.getLogger(__name__)

# An import keeps the errors of its first lines that failed: enough to fix a file, little enough to show.
MAX_ERRORS = 100


class Importer:
    """Starts imports as tasks of this process; at shutdown it stops them, and each says where it stopped."""

    def __init__(self, service: Service, clock: Clock, batch_size: int) -> None:
        self._service = service
        self._store = service.store
        self._clock = clock
        self._batch_size = batch_size
        self._owner = f"importer-{uuid.uuid4().hex[:12]}"
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def start(self, spooled: Spooled, *, upsert: bool) -> ClientImport:
        """Import a spooled file in the background; the file is removed after."""
        try:
            started = await self._store.imports.create(
                "upsert" if upsert else "insert", spooled.kind.value, spooled.lines, self._owner, self._clock.now()
            )
        except BaseException:
            spooled.path.unlink(missing_ok=True)
            raise
        task = asyncio.create_task(self._run(started, spooled, upsert), name=f"import-{started.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return started

    async def stop(self, grace_s: float = 10.0) -> None:
        """Each import stops after the batch it is writing, and records where; one that takes longer is cancelled."""
        self._stopping = True
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _run(self, run: ClientImport, spooled: Spooled, upsert: bool) -> None:
        with log_context(import_id=run.id):
            log.info("import started", extra={"mode": run.mode, "format": run.format})
            try:
                run, finished = await self._read(run, spooled, upsert)
                if not finished:
                    run = replace(run, status=ImportStatus.FAILED, detail=STOPPED)
                    log.warning("import stopped with the process", extra={"line": run.line})
                else:
                    run = replace(run, status=ImportStatus.DONE)
                    log.info("import done", extra={"line": run.line, **vars(run.counts)})
            except asyncio.CancelledError:
                run = replace(run, status=ImportStatus.FAILED, detail=STOPPED)
                raise
            except Exception as exc:
                log.exception("import failed", extra={"line": run.line})
                run = replace(run, status=ImportStatus.FAILED, detail=f"{type(exc).__name__}: {exc}")
            finally:
                spooled.path.unlink(missing_ok=True)
                await asyncio.shield(self._save(run))

    async def _read(self, run: ClientImport, spooled: Spooled, upsert: bool) -> tuple[ClientImport, bool]:
        """Read and write the file batch by batch; returns the import, and whether it got to the end."""
        batch: list[Row] = []
        number = spooled.first_line - 1
        with spooled.path.open("rb") as lines:
            if spooled.first_line > 1:
                lines.readline()  # the CSV's header
            for number, raw in enumerate(lines, start=spooled.first_line):
                if (row := parse(spooled.kind, spooled.columns, number, raw.rstrip(b"\r\n"))) is not None:
                    batch.append(row)
                if len(batch) >= self._batch_size:
                    run = await self._write(run, batch, upsert, number)
                    batch = []
                    if self._stopping:
                        return run, False
        return await self._write(run, batch, upsert, number), True

    async def _write(self, run: ClientImport, batch: list[Row], upsert: bool, line: int) -> ClientImport:
        valid = [row.fields for row in batch if row.fields is not None]
        refused = [{"line": row.line, "errors": row.errors} for row in batch if row.errors is not None]
        counts = await self._service.import_clients(valid, upsert=upsert) if valid else ImportCounts()
        counts = replace(counts, failed=len(refused)).plus(ImportCounts(processed=len(batch)))
        run = replace(run, counts=run.counts.plus(counts), line=line, errors=(run.errors + refused)[:MAX_ERRORS])
        await self._save(run)
        return run

    async def _save(self, run: ClientImport) -> None:
        await self._store.imports.save(run, self._owner, self._clock.now())
