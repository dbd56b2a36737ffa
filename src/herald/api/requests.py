"""Request context: an id on every log line of a request and on its response, and one line per API request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from herald.logs import log_context

log = logging.getLogger(__name__)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request id on every log line of the request and on the response (taken from X-Request-ID if sane)."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
    started = time.perf_counter()
    with log_context(request_id=request_id):
        response = await handler(request)
        response.headers["X-Request-ID"] = request_id
        if request.path.startswith("/api/"):
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
        return response
