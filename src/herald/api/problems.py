"""Every error leaves as application/problem+json (RFC 9457), with field-level details where there are any."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any, NoReturn

import marshmallow
from aiohttp import web
from aiohttp.typedefs import Handler

from herald.errors import Conflict, HeraldError, Invalid, NotFound, TooLarge
from herald.logs import current

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class RequestInvalid(Exception):
    """The request's body, query or path failed schema validation."""

    def __init__(self, errors: Any) -> None:
        super().__init__("request validation failed")
        self.errors = errors


def on_validation_error(error: marshmallow.ValidationError, *args: Any, **kwargs: Any) -> NoReturn:
    """webargs' error callback: drop the location level ({"json": {...}}) and let the middleware answer."""
    messages = error.messages
    if isinstance(messages, dict) and len(messages) == 1:
        (messages,) = messages.values()
    raise RequestInvalid(messages)


def problem(status: int, detail: str | None = None, **extra: Any) -> web.Response:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        **({"detail": detail} if detail else {}),
        **extra,
    }
    if current("request_id"):
        body["request_id"] = current("request_id")
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM_JSON)


STATUS_OF = {Invalid: 422, NotFound: 404, Conflict: 409, TooLarge: 413}


def answer_for(exc: HeraldError) -> web.Response:
    """The problem+json answer to a domain error."""
    return problem(STATUS_OF[type(exc)], exc.detail, **({"errors": exc.fields} if exc.fields else {}))


def _describe(exc: web.HTTPException) -> dict[str, Any]:
    """Detail (and field errors, which webargs sends as JSON text, e.g. for a body that is not JSON) of an error."""
    if exc.text == f"{exc.status}: {exc.reason}":
        return {}
    if exc.content_type == "application/json":
        try:
            return {"detail": "Malformed request.", "errors": json.loads(exc.text or "")}
        except ValueError:
            pass
    return {"detail": exc.text}


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestInvalid as exc:
        return problem(422, "The request has invalid fields.", errors=exc.errors)
    except HeraldError as exc:
        return answer_for(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = problem(exc.status, **_describe(exc))
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return problem(500)
