"""Helpers shared by the resource handlers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from herald.api.schemas import MAX_ID, Problem
from herald.errors import NotFound

ERROR_TEXT = {
    400: "Malformed request (e.g. a body that is not JSON).",
    401: "No valid credentials: send `Authorization: Bearer <token>`.",
    403: "The credentials do not allow this: a viewer may only read.",
    404: "No such object.",
    409: "Conflicts with the current state.",
    413: "The body is larger than allowed.",
    415: "The body is of a media type this operation does not take.",
    503: "The identity provider that vouches for the token is unreachable; try again later.",
    422: "Invalid fields; `errors` says which and why.",
}


def problems(*codes: int) -> dict[int, dict[str, Any]]:
    """OpenAPI responses for the given error statuses, all problem+json."""
    return {
        code: {"description": ERROR_TEXT[code], "content": {"application/problem+json": {"schema": Problem}}}
        for code in codes
    }


def path_id(request: web.Request, name: str = "id") -> int:
    """The integer id in the path (the route admits digits only); beyond int64 nothing can exist."""
    value = int(request.match_info[name])
    if value > MAX_ID:
        raise NotFound(f"no object with id {value}")
    return value


def page(items: Sequence[Any], limit: int, dump: Callable[[Sequence[Any]], list[Any]]) -> dict[str, Any]:
    """One page of a list fetched with `limit + 1` rows: the extra row only tells whether another page exists."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": dump(items), "next_after": items[-1].id if more else None}
