"""The message log: every delivery with its status, attempts and last error."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, querystring_schema, response_schema

from herald.api.common import page, problems
from herald.api.schemas import MessageOut, MessageQuery, page_of
from herald.app_keys import store_key


@docs(
    tags=["messages"],
    summary="List messages",
    description="Filtered by mailing, client and status; by id order.",
    responses=problems(422),
)
@querystring_schema(MessageQuery)
@response_schema(page_of(MessageOut), 200)
async def list_messages(request: web.Request) -> web.Response:
    query = dict(request["querystring"])
    limit = query.pop("limit")
    messages = await request.app[store_key].messages.page(limit=limit + 1, **query)
    return web.json_response(page(messages, limit, MessageOut(many=True).dump))
