"""Client directory endpoints."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, json_schema, querystring_schema, response_schema

from herald.api import idempotency
from herald.api.common import page, path_id, problems
from herald.api.schemas import ClientCreate, ClientOut, ClientPageQuery, ClientPatch, page_of
from herald.app_keys import service_key, store_key

TAGS = ["clients"]


@docs(
    tags=TAGS,
    summary="Add a client to the directory",
    description="If the client matches a running mailing, it gets that mailing's message.",
    parameters=[idempotency.PARAMETER],
    responses=problems(400, 409, 422),
)
@json_schema(ClientCreate)
@response_schema(ClientOut, 201, description="The client as stored.")
@idempotency.idempotent
async def create_client(request: web.Request) -> web.Response:
    client = await request.app[service_key].create_client(request["json"])
    return web.json_response(ClientOut().dump(client), status=201)


@docs(
    tags=TAGS,
    summary="List clients",
    description="Optionally filtered by tag and operator code; by id order.",
    responses=problems(422),
)
@querystring_schema(ClientPageQuery)
@response_schema(page_of(ClientOut), 200)
async def list_clients(request: web.Request) -> web.Response:
    query = request["querystring"]
    clients = await request.app[store_key].clients.page(
        after=query.get("after"),
        limit=query["limit"] + 1,
        tag=query.get("tag"),
        operator_code=query.get("operator_code"),
    )
    return web.json_response(page(clients, query["limit"], ClientOut(many=True).dump))


@docs(tags=TAGS, summary="Get a client", responses=problems(404))
@response_schema(ClientOut, 200)
async def get_client(request: web.Request) -> web.Response:
    client = await request.app[store_key].clients.get(path_id(request))
    return web.json_response(ClientOut().dump(client))


@docs(
    tags=TAGS,
    summary="Change a client's attributes",
    description="Running mailings follow: the client joins the ones it now matches and leaves the others.",
    responses=problems(400, 404, 409, 422),
)
@json_schema(ClientPatch)
@response_schema(ClientOut, 200)
async def update_client(request: web.Request) -> web.Response:
    client = await request.app[service_key].update_client(path_id(request), request["json"])
    return web.json_response(ClientOut().dump(client))


@docs(
    tags=TAGS,
    summary="Remove a client from the directory",
    description="Its messages not yet sent are cancelled; sent ones stay in the statistics.",
    responses={204: {"description": "Deleted."}, **problems(404)},
)
async def delete_client(request: web.Request) -> web.Response:
    await request.app[service_key].delete_client(path_id(request))
    return web.Response(status=204)
