"""Request context: an id on every log line of a request and on its response, and one line per API request.

The mailing, client or import a request names (in its path, in its query, or as the object it creates) rides on
every line it logs, the request line included, so that one filter (`jq 'select(.mailing_id == 2)'`) finds the
API's requests about an object next to what Herald did with it."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from herald.logs import log_context

log = logging.getLogger(__name__)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# The id in a path names an object of the kind its route is under: /clients/{id}/... names a client.
PATH_IDS = {
    "/api/v1/clients/{id}": "client_id",
    "/api/v1/mailings/{id}": "mailing_id",
    "/api/v1/imports/{id}": "import_id",
}
QUERY_IDS = ("mailing_id", "client_id")
# A create's answer is the new object, whose id names it.
CREATED_IDS = {"/api/v1/clients": "client_id", "/api/v1/mailings": "mailing_id", "/api/v1/clients/import": "import_id"}


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request id on every log line of the request and on the response (taken from X-Request-ID if sane)."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
    started = time.perf_counter()
    with log_context(request_id=request_id, **named_ids(request)):
        response = await handler(request)
        response.headers["X-Request-ID"] = request_id
        if request.path.startswith("/api/"):
            log.info("request", extra={
                "method": request.method, "path": request.path, "status": response.status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1), **created_ids(request, response),
            })  # fmt: skip
        return response


def named_ids(request: web.Request) -> dict[str, int]:
    """The ids of the objects a request's path and query name."""
    route = _route(request)
    ids = {name: int(request.match_info["id"]) for prefix, name in PATH_IDS.items()
           if route == prefix or route.startswith(prefix + "/")}  # fmt: skip
    for name in QUERY_IDS:
        value = request.query.get(name, "")
        if value.isascii() and value.isdigit():
            ids.setdefault(name, int(value))
    return ids


def created_ids(request: web.Request, response: web.StreamResponse) -> dict[str, int]:
    """The id of the object a create made, from its answer."""
    name = CREATED_IDS.get(_route(request))
    if name is None or request.method != "POST" or response.status not in (201, 202):
        return {}
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return {}
    created = json.loads(response.body)
    return {name: created["id"]} if isinstance(created, dict) and isinstance(created.get("id"), int) else {}


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else ""
