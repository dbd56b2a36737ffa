"""Mailing endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, json_schema, querystring_schema, response_schema

from herald.api import idempotency
from herald.api.common import page, path_id, problems
from herald.api.schemas import (
    MailingCreate,
    MailingOut,
    MailingPatch,
    Page,
    RetriedOut,
    TestSendIn,
    TestSendOut,
    page_of,
)
from herald.app_keys import clock_key, config_key, http_session_key, metrics_key, service_key, store_key
from herald.dispatch.sender import Sender
from herald.domain.models import Mailing
from herald.domain.outcome import Verdict

TAGS = ["mailings"]


def state(mailing: Mailing, now: datetime) -> str:
    if now >= mailing.end_at:
        return "ended"
    if mailing.paused:
        return "paused"
    return "scheduled" if now < mailing.start_at else "running"


def dump(mailings: list[Mailing], now: datetime) -> list[dict[str, Any]]:
    rows = MailingOut().dump(mailings, many=True)
    for row, mailing in zip(rows, mailings, strict=True):
        row["state"] = state(mailing, now)
    return rows


def answer(request: web.Request, mailing: Mailing, status: int = 200) -> web.Response:
    """One mailing as MailingOut, its state as of now."""
    return web.json_response(dump([mailing], request.app[clock_key].now())[0], status=status)


@docs(
    tags=TAGS,
    summary="Create a mailing",
    description="Starts by itself at `start_at` (at once if that has passed); nothing is delivered at or "
    "after `end_at`.",
    parameters=[idempotency.PARAMETER],
    responses=problems(400, 409, 422),
)
@json_schema(MailingCreate)
@response_schema(MailingOut, 201)
@idempotency.idempotent
async def create_mailing(request: web.Request) -> web.Response:
    mailing = await request.app[service_key].create_mailing(request["json"])
    return answer(request, mailing, status=201)


@docs(tags=TAGS, summary="List mailings", responses=problems(422))
@querystring_schema(Page)
@response_schema(page_of(MailingOut), 200)
async def list_mailings(request: web.Request) -> web.Response:
    query = request["querystring"]
    mailings = await request.app[store_key].mailings.page(after=query.get("after"), limit=query["limit"] + 1)
    now = request.app[clock_key].now()
    return web.json_response(page(mailings, query["limit"], lambda items: dump(items, now)))


@docs(tags=TAGS, summary="Get a mailing", responses=problems(404))
@response_schema(MailingOut, 200)
async def get_mailing(request: web.Request) -> web.Response:
    mailing = await request.app[store_key].mailings.get(path_id(request))
    return answer(request, mailing)


@docs(
    tags=TAGS,
    summary="Change a mailing",
    description="A new text applies to messages not yet sent; a new filter adds messages for newly matching "
    "clients and cancels unsent ones of clients that no longer match (the filter is replaced as a "
    "whole); a new end applies at once, and moving it later gives expired messages another chance.",
    responses=problems(400, 404, 409, 422),
)
@json_schema(MailingPatch)
@response_schema(MailingOut, 200)
async def update_mailing(request: web.Request) -> web.Response:
    mailing = await request.app[service_key].update_mailing(path_id(request), request["json"])
    return answer(request, mailing)


@docs(
    tags=TAGS,
    summary="Delete a mailing",
    description="Its messages not yet sent are cancelled.",
    responses={204: {"description": "Deleted."}, **problems(404)},
)
async def delete_mailing(request: web.Request) -> web.Response:
    await request.app[service_key].delete_mailing(path_id(request))
    return web.Response(status=204)


@docs(
    tags=TAGS,
    summary="Pause a mailing",
    description="No message of it is sent until it resumes (those in flight finish); its end still holds: what is "
    "unsent at `end_at` expires, paused or not. Pausing a paused mailing changes nothing.",
    responses=problems(404, 409),
)
@response_schema(MailingOut, 200)
async def pause_mailing(request: web.Request) -> web.Response:
    mailing = await request.app[service_key].pause_mailing(path_id(request))
    return answer(request, mailing)


@docs(
    tags=TAGS,
    summary="Resume a paused mailing",
    description="Its messages are due again, each when it would have been. Resuming a running mailing changes nothing.",
    responses=problems(404),
)
@response_schema(MailingOut, 200)
async def resume_mailing(request: web.Request) -> web.Response:
    mailing = await request.app[service_key].resume_mailing(path_id(request))
    return answer(request, mailing)


@docs(
    tags=TAGS,
    summary="Send failed messages again",
    description="The mailing's failed messages are pending again, with a fresh budget of attempts. Not after the "
    "mailing's end.",
    responses=problems(404, 409),
)
@response_schema(RetriedOut, 200)
async def retry_failed(request: web.Request) -> web.Response:
    retried = await request.app[service_key].retry_failed(path_id(request))
    return web.json_response({"retried": retried})


@docs(
    tags=TAGS,
    summary="Send a test of a mailing to one phone",
    description="Sends the mailing's text to the phone through the external API now and answers how it went. "
    "It creates no message and counts in no statistics; its msgId is above every message's.",
    responses=problems(400, 404, 422),
)
@json_schema(TestSendIn)
@response_schema(TestSendOut, 200)
async def test_send(request: web.Request) -> web.Response:
    return web.json_response(await send_test(request, path_id(request), request["json"]["phone"]))


async def send_test(request: web.Request, mailing_id: int, phone: str) -> dict[str, Any]:
    """A test send and its outcome as TestSendOut: the API's answer, and what the admin UI shows."""
    app = request.config_dict
    sender = Sender(app[http_session_key], app[config_key].sender, app[clock_key], app[metrics_key])
    outcome, msg_id = await app[service_key].test_send(mailing_id, phone, sender)
    return {
        "sent": outcome.verdict is Verdict.SENT,
        "outcome": outcome.reason,
        "detail": outcome.detail,
        "msg_id": msg_id,
    }
