"""Statistics: message counts by status, for every mailing and in detail for one."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, querystring_schema, response_schema

from herald.api.common import page, path_id, problems
from herald.api.mailings import dump
from herald.api.schemas import MailingStatsOut, MessageLogQuery, MessageOut, Page, StatsOut
from herald.app_keys import clock_key, store_key
from herald.store.stats import with_total

TAGS = ["statistics"]


@docs(
    tags=TAGS,
    summary="Statistics of all mailings",
    description="Each mailing (a page of them) with its message counts by status, and the counts over all messages.",
    responses=problems(422),
)
@querystring_schema(Page)
@response_schema(StatsOut, 200)
async def all_stats(request: web.Request) -> web.Response:
    query, store = request["querystring"], request.app[store_key]
    mailings = await store.mailings.page(after=query.get("after"), limit=query["limit"] + 1)
    body = page(mailings, query["limit"], lambda items: dump(items, request.app[clock_key].now()))
    counts = await store.stats.by_mailing(row["id"] for row in body["items"])
    for row in body["items"]:
        row.update(with_total(counts[row["id"]]))
    body.update(with_total(await store.stats.overall()))
    return web.json_response(body)


@docs(
    tags=TAGS,
    summary="Statistics of one mailing",
    description="The mailing, its message counts by status, and its messages (a page, optionally by status).",
    responses=problems(404, 422),
)
@querystring_schema(MessageLogQuery)
@response_schema(MailingStatsOut, 200)
async def mailing_stats(request: web.Request) -> web.Response:
    query, store = request["querystring"], request.app[store_key]
    mailing = await store.mailings.get(path_id(request))
    counts = await store.stats.by_mailing([mailing.id])
    messages = await store.messages.page(
        mailing_id=mailing.id, status=query.get("status"), after=query.get("after"), limit=query["limit"] + 1
    )
    return web.json_response(
        {
            "mailing": dump([mailing], request.app[clock_key].now())[0],
            **with_total(counts[mailing.id]),
            "messages": page(messages, query["limit"], MessageOut(many=True).dump),
        }
    )
