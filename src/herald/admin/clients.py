"""Client pages: a searchable, filterable, paginated list; create, edit, delete."""

from __future__ import annotations

from aiohttp import web

from herald.admin.common import render
from herald.admin.forms import Errors, client_body, client_values, from_error, parse
from herald.admin.guard import redirect
from herald.api.common import page, path_id
from herald.api.schemas import ClientCreate, ClientPageQuery, ClientPatch
from herald.app_keys import service_key, store_key
from herald.errors import HeraldError

PAGE_SIZE = 25


async def list_clients(request: web.Request) -> web.Response:
    search = request.query.get("q", "").strip()
    filters = {key: value for key in ("tag", "operator_code", "after") if (value := request.query.get(key, ""))}
    query, errors = parse(ClientPageQuery(), {**filters, "limit": PAGE_SIZE})
    clients = (
        []
        if query is None
        else await request.config_dict[store_key].clients.page(
            after=query.get("after"),
            limit=PAGE_SIZE + 1,
            tag=query.get("tag"),
            operator_code=query.get("operator_code"),
            phone_prefix=search,
        )
    )
    shown = page(clients, PAGE_SIZE, list)
    return render(
        request,
        "clients.html",
        {
            "clients": shown["items"],
            "next_after": shown["next_after"],
            "search": {"q": search, **{key: request.query.get(key, "") for key in ("tag", "operator_code")}},
            "errors": errors,
        },
    )


def _form(
    request: web.Request, values: dict[str, str], errors: Errors, client_id: int | None = None, status: int = 200
) -> web.Response:
    context = {"values": values, "errors": errors, "client_id": client_id}
    return render(request, "client_form.html", context, status=status)


async def new_client(request: web.Request) -> web.Response:
    return _form(request, {}, {})


async def create_client(request: web.Request) -> web.Response:
    form = {key: str(value) for key, value in (await request.post()).items()}
    data, errors = parse(ClientCreate(), client_body(form))
    if data is None:
        return _form(request, form, errors, status=422)
    try:
        await request.config_dict[service_key].create_client(data)
    except HeraldError as exc:
        return _form(request, form, from_error(exc), status=422)
    return redirect("/admin/clients")


async def edit_client(request: web.Request) -> web.Response:
    client = await request.config_dict[store_key].clients.get(path_id(request))
    return _form(request, client_values(client), {}, client.id)


async def update_client(request: web.Request) -> web.Response:
    client_id = path_id(request)
    form = {key: str(value) for key, value in (await request.post()).items()}
    data, errors = parse(ClientPatch(), client_body(form))
    if data is None:
        return _form(request, form, errors, client_id, status=422)
    try:
        await request.config_dict[service_key].update_client(client_id, data)
    except HeraldError as exc:
        return _form(request, form, from_error(exc), client_id, status=422)
    return redirect("/admin/clients")


async def confirm_delete_client(request: web.Request) -> web.Response:
    client = await request.config_dict[store_key].clients.get(path_id(request))
    return render(
        request,
        "confirm_delete.html",
        {
            "what": f"client #{client.id}",
            "detail": client.phone,
            "consequence": "Its messages not yet sent are cancelled; sent ones stay in the statistics.",
            "back": "/admin/clients",
        },
    )


async def delete_client(request: web.Request) -> web.Response:
    await request.config_dict[service_key].delete_client(path_id(request))
    return redirect("/admin/clients")
