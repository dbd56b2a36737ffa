"""The import page: a file upload, the import's live progress, the lines it refused; and the clients' export."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, web

from herald.admin.common import render
from herald.admin.forms import parse
from herald.admin.guard import error_page, redirect
from herald.api.common import path_id
from herald.api.imports import CHUNK, stream_csv
from herald.api.schemas import ClientQuery, ImportQuery
from herald.app_keys import clock_key, config_key, importer_key, store_key
from herald.errors import HeraldError, Invalid
from herald.imports.rows import COLUMNS, Format
from herald.imports.spool import spool

# How a file's name tells its format, when the browser sends no telling type.
SUFFIXES = {".csv": Format.CSV, ".ndjson": Format.NDJSON, ".jsonl": Format.NDJSON}


async def new_import(request: web.Request) -> web.Response:
    return render(request, "import_form.html", {"columns": ",".join(COLUMNS), "error": None})


async def upload_import(request: web.Request) -> web.Response:
    """The form is multipart: its fields come first (the mode), then the file, streamed to disk."""
    mode, error = "insert", "Choose a file to import."
    if request.content_type != "multipart/form-data":  # a form with no file field sends no parts
        return _refused(request, error)
    reader = await request.multipart()
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "mode":
                query, errors = parse(ImportQuery(), {"mode": await part.text()})
                if query is None:
                    raise Invalid("unknown mode", **errors)
                mode = query["mode"]
            elif part.name == "file":
                kind = _format(part)
                limit = request.config_dict[config_key].http.import_max_mb * 2**20
                spooled = await spool(_chunks(part), kind, limit)
                started = await request.config_dict[importer_key].start(spooled, upsert=mode == "upsert")
                return redirect(f"/admin/imports/{started.id}")
    except HeraldError as exc:
        error = exc.detail + "".join(f" {field}: {' '.join(texts)}" for field, texts in exc.fields.items())
    return _refused(request, error)


def _refused(request: web.Request, error: str) -> web.Response:
    return render(request, "import_form.html", {"columns": ",".join(COLUMNS), "error": error}, status=422)


def _format(part: BodyPartReader) -> Format:
    name = (part.filename or "").lower()
    for suffix, kind in SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    try:
        return Format(part.headers.get("Content-Type", ""))
    except ValueError:
        raise Invalid("send a .csv or an .ndjson file", file=["Not a CSV or NDJSON file."]) from None


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


async def show_import(request: web.Request) -> web.Response:
    found = await request.config_dict[store_key].imports.get(path_id(request), request.config_dict[clock_key].now())
    return render(request, "import.html", {"run": found})


async def import_progress(request: web.Request) -> web.Response:
    """What the page's live progress bar polls."""
    found = await request.config_dict[store_key].imports.get(path_id(request), request.config_dict[clock_key].now())
    done = found.counts.processed
    total = max(found.lines, done)
    return web.json_response(
        {"state": found.status.value, "done": done, "total": total, "percent": 100 * done // total if total else 100}
    )


async def export_clients(request: web.Request) -> web.StreamResponse:
    query, errors = parse(
        ClientQuery(), {key: value for key in ("tag", "operator_code") if (value := request.query.get(key, ""))}
    )
    if query is None:
        return error_page(request, 422, "; ".join(f"{field}: {' '.join(texts)}" for field, texts in errors.items()))
    return await stream_csv(request, query.get("tag"), query.get("operator_code"))
