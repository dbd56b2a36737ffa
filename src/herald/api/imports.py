"""Clients in bulk: an import from a CSV or NDJSON file, its progress, and the export that reads back into it."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, querystring_schema, response_schema

from herald.api.common import path_id, problems
from herald.api.schemas import ClientQuery, ImportOut, ImportQuery
from herald.app_keys import clock_key, config_key, importer_key, store_key
from herald.imports.rows import COLUMNS, CSV_HEADER, Format, csv_line, header_line
from herald.imports.spool import spool

TAGS = ["clients"]
CHUNK = 64 * 1024
EXAMPLE_CSV = "phone,operator_code,tag,timezone\n79001234567,,vip,Europe/Moscow\n79011234567,901,,Asia/Yekaterinburg\n"
EXAMPLE_NDJSON = (
    '{"phone": "79001234567", "tag": "vip", "timezone": "Europe/Moscow"}\n'
    '{"phone": "79011234567", "operator_code": "901", "timezone": "Asia/Yekaterinburg"}\n'
)


def _format(request: web.Request) -> Format:
    try:
        return Format(request.content_type)
    except ValueError:
        raise web.HTTPUnsupportedMediaType(text=f"Send {Format.CSV.value} or {Format.NDJSON.value}.") from None


@docs(
    tags=TAGS,
    summary="Import clients from a file",
    description="The body is a CSV file with the header `" + ",".join(COLUMNS) + "` (UTF-8; operator_code and "
    "tag may be empty) or NDJSON, one client object a line. It is read after the answer, in batches: "
    "follow `Location` for the progress. A line that fails the client API's rules fails alone, with "
    "the same messages. Imported clients join the running mailings they match.",
    requestBody={
        "required": True,
        "content": {
            Format.CSV.value: {"schema": {"type": "string", "pattern": CSV_HEADER.pattern}, "example": EXAMPLE_CSV},
            Format.NDJSON.value: {"schema": {"type": "string"}, "example": EXAMPLE_NDJSON},
        },
    },
    responses={
        202: {
            "description": "Accepted: the import runs; `Location` is its resource.",
            "headers": {"Location": {"schema": {"type": "string"}, "description": "/api/v1/imports/{id}"}},
        },
        **problems(413, 415, 422),
    },
)
@querystring_schema(ImportQuery)
@response_schema(ImportOut, 202)
async def import_clients(request: web.Request) -> web.Response:
    limit = request.app[config_key].http.import_max_mb * 2**20
    spooled = await spool(request.content.iter_chunked(CHUNK), _format(request), limit)
    started = await request.app[importer_key].start(spooled, upsert=request["querystring"]["mode"] == "upsert")
    return web.json_response(
        ImportOut().dump(started), status=202, headers={"Location": f"/api/v1/imports/{started.id}"}
    )


@docs(tags=TAGS, summary="The progress of an import", responses=problems(404))
@response_schema(ImportOut, 200)
async def get_import(request: web.Request) -> web.Response:
    found = await request.app[store_key].imports.get(path_id(request), request.app[clock_key].now())
    return web.json_response(ImportOut().dump(found))


@docs(
    tags=TAGS,
    summary="Export clients as CSV",
    description="Every client (of a tag, an operator code), in id order, in the import's CSV format: imported "
    "again with mode=upsert, it changes nothing.",
    responses={
        200: {
            "description": "CSV, streamed.",
            "content": {Format.CSV.value: {"schema": {"type": "string"}, "example": EXAMPLE_CSV}},
        },
        **problems(422),
    },
)
@querystring_schema(ClientQuery)
async def export_clients(request: web.Request) -> web.StreamResponse:
    query = request["querystring"]
    return await stream_csv(request, query.get("tag"), query.get("operator_code"))


async def stream_csv(request: web.Request, tag: str | None, operator_code: str | None) -> web.StreamResponse:
    """The clients, a page at a time, as the import's CSV: the API's export and the admin UI's."""
    response = web.StreamResponse(headers={"Content-Disposition": 'attachment; filename="clients.csv"'})
    response.content_type = Format.CSV.value
    response.charset = "utf-8"
    await response.prepare(request)
    if request.method == "HEAD":  # the headers only: a streamed body is written by hand, so not sent by aiohttp
        return response
    await response.write(header_line().encode())
    async for page in request.config_dict[store_key].clients.pages(tag=tag, operator_code=operator_code):
        await response.write("".join(csv_line(vars(client)) for client in page).encode())
    await response.write_eof()
    return response
