"""Mailing endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, querystring_schema, json_schema, response_schema

from herald.api.common import page, path_id, problems
from herald.api.schemas import MailingCreate, MailingOut, MailingPatch, Page, page_of
from herald.app_keys import clock_key, service_key, store_key
from herald.domain.models import Mailing

TAGS = ["mailings"]


def state(mailing: Mailing, now: datetime) -> str:
    if now < mailing.start_at:
        return "scheduled"
    return "running" if now < mailing.end_at else "ended"


def dump(mailings: list[Mailing], now: datetime) -> list[dict[str, Any]]:
    rows = MailingOut().dump(mailings, many=True)
    for row, mailing in zip(rows, mailings, strict=True):
        row["state"] = state(mailing, now)
    return rows


@docs(tags=TAGS, summary="Create a mailing",
      description="Starts by itself at `start_at` (at once if that has passed); nothing is delivered at or "
                  "after `end_at`.",
      responses=problems(400, 422))
@json_schema(MailingCreate)
@response_schema(MailingOut, 201)
async def create_mailing(request: web.Request) -> web.Response:
    mailing = await request.app[service_key].create_mailing(request["json"])
    return web.json_response(dump([mailing], request.app[clock_key].now())[0], status=201)


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
    return web.json_response(dump([mailing], request.app[clock_key].now())[0])


@docs(tags=TAGS, summary="Change a mailing",
      description="A new text applies to messages not yet sent; a new filter adds messages for newly matching "
                  "clients and cancels unsent ones of clients that no longer match (the filter is replaced as a "
                  "whole); a new end applies at once, and moving it later gives expired messages another chance.",
      responses=problems(400, 404, 409, 422))
@json_schema(MailingPatch)
@response_schema(MailingOut, 200)
async def update_mailing(request: web.Request) -> web.Response:
    mailing = await request.app[service_key].update_mailing(path_id(request), request["json"])
    return web.json_response(dump([mailing], request.app[clock_key].now())[0])


@docs(tags=TAGS, summary="Delete a mailing", description="Its messages not yet sent are cancelled.",
      responses={204: {"description": "Deleted."}, **problems(404)})
async def delete_mailing(request: web.Request) -> web.Response:
    await request.app[service_key].delete_mailing(path_id(request))
    return web.Response(status=204)
