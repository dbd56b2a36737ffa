"""Safe retries of a create, as the IETF httpapi draft "The Idempotency-Key HTTP Header Field" has them: the same
key with the same body answers the first result again without a second write; with another body it is a 422; a
key is kept for a day."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from datetime import datetime, timedelta

from aiohttp import web
from aiohttp.typedefs import Handler

from herald.api.problems import answer_for, problem
from herald.api.requests import created_ids
from herald.app_keys import clock_key, principal_key, store_key
from herald.errors import HeraldError
from herald.logs import log_context
from herald.store.idempotency import KeyUse, to_millisecond

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEY = re.compile(r"^[!-~]{1,255}$")  # visible ASCII, as a token or a UUID is
LIFETIME = timedelta(hours=24)
# A key whose first request has had no answer for this long was abandoned (its process died mid-request): a retry
# takes it over rather than meeting a 409 for a day.
ABANDONED_AFTER = timedelta(minutes=5)
PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "pattern": KEY.pattern},
    "description": "Makes a retry safe: the same key with the same body answers the first result again (with "
    f"`{REPLAYED}: true`) and writes nothing; with another body it is a 422; while the first request is served, "
    "a 409. Keys are kept for 24 hours.",
}


def idempotent(handler: Handler) -> Handler:
    """Give a create handler the Idempotency-Key header; without the header it runs as it is."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        key = request.headers.get(HEADER)
        if key is None:
            return await handler(request)
        if not KEY.match(key):
            return problem(400, "Malformed Idempotency-Key.", errors={HEADER: ["1 to 255 visible ASCII characters."]})
        store, now = request.app[store_key].idempotency, to_millisecond(request.app[clock_key].now())
        principal = request.get(principal_key)
        scoped = f"{request.method} {request.path}\n{principal.subject if principal else '-'}\n{key}"
        fingerprint = _fingerprint(await request.json())
        held = await store.take(scoped, fingerprint, now)
        if held is not None:
            if not _over(held, now):
                return _again(request, held, fingerprint)
            if not await store.take_over(scoped, held, fingerprint, now):
                return _busy()
        try:
            try:
                response = await handler(request)
            except HeraldError as exc:  # a refusal (a taken phone, say) is an answer, and kept as one
                response = answer_for(exc)
        except BaseException:
            await store.release(scoped, now)
            raise
        if response.status >= 500 or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
            await store.release(scoped, now)
        else:
            await store.answer(scoped, now, response.status, response.content_type, response.body.decode())
        return response

    return wrapper


def _fingerprint(body: object) -> str:
    """The body as JSON means it: key order and spacing do not make another body."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _over(held: KeyUse, now: datetime) -> bool:
    """The key's use has expired, or its request was abandoned without an answer."""
    age = now - held.created_at
    return age >= LIFETIME or (held.status is None and age >= ABANDONED_AFTER)


def _again(request: web.Request, held: KeyUse, fingerprint: str) -> web.Response:
    if held.fingerprint != fingerprint:
        return problem(
            422,
            "This Idempotency-Key was used with another body; use a new key for a new request.",
            errors={HEADER: ["Already used with another body."]},
        )
    if held.status is None:
        return _busy()
    assert held.body is not None and held.content_type is not None
    answer = web.Response(
        status=held.status, text=held.body, content_type=held.content_type, headers={REPLAYED: "true"}
    )
    with log_context(**created_ids(request, answer)):
        log.info("answered again for an idempotency key", extra={"status": held.status})
    return answer


def _busy() -> web.Response:
    return problem(409, "A request with this Idempotency-Key is being served; retry it later.")
