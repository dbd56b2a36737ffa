"""Mailing pages: the list, create and edit, a mailing with its counts, message log and audience, delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from herald.admin.common import Progress, column_chart, render, zone
from herald.admin.forms import Errors, from_error, mailing_body, mailing_values, parse, words
from herald.admin.guard import error_page, redirect
from herald.api.common import page, path_id
from herald.api.mailings import send_test, state
from herald.api.schemas import STATUSES, FilterIn, MailingCreate, MailingPatch, MessageLogQuery, Page, TestSendIn
from herald.app_keys import clock_key, service_key, store_key
from herald.errors import Conflict, HeraldError
from herald.service import Service

PAGE_SIZE = 25


def _given(request: web.Request) -> dict[str, str]:
    """The query's non-empty parameters: a filter form's "any" option sends an empty value."""
    return {key: value for key, value in request.query.items() if value}


async def list_mailings(request: web.Request) -> web.Response:
    store, now = request.config_dict[store_key], request.config_dict[clock_key].now()
    query, errors = parse(Page(), {**_given(request), "limit": PAGE_SIZE})
    after = query.get("after") if query else None
    shown = page(await store.mailings.page(after=after, limit=PAGE_SIZE + 1), PAGE_SIZE, list)
    counts = await store.stats.by_mailing(mailing.id for mailing in shown["items"])
    return render(
        request,
        "mailings.html",
        {
            "rows": [(mailing, state(mailing, now), Progress.of(counts[mailing.id])) for mailing in shown["items"]],
            "next_after": shown["next_after"],
            "errors": errors,
        },
    )


def _form(
    request: web.Request, values: dict[str, str], errors: Errors, mailing_id: int | None = None, status: int = 200
) -> web.Response:
    context = {"values": values, "errors": errors, "mailing_id": mailing_id}
    return render(request, "mailing_form.html", context, status=status)


async def new_mailing(request: web.Request) -> web.Response:
    return _form(request, {}, {})


async def create_mailing(request: web.Request) -> web.Response:
    form = {key: str(value) for key, value in (await request.post()).items()}
    data, errors = parse(MailingCreate(), mailing_body(form, zone(request)))
    if data is None:
        return _form(request, form, errors, status=422)
    try:
        mailing = await request.config_dict[service_key].create_mailing(data)
    except HeraldError as exc:
        return _form(request, form, from_error(exc), status=422)
    return redirect(f"/admin/mailings/{mailing.id}")


async def edit_mailing(request: web.Request) -> web.Response:
    mailing = await request.config_dict[store_key].mailings.get(path_id(request))
    return _form(request, mailing_values(mailing, zone(request)), {}, mailing.id)


async def update_mailing(request: web.Request) -> web.Response:
    mailing_id = path_id(request)
    form = {key: str(value) for key, value in (await request.post()).items()}
    data, errors = parse(MailingPatch(), mailing_body(form, zone(request)))
    if data is None:
        return _form(request, form, errors, mailing_id, status=422)
    try:
        await request.config_dict[service_key].update_mailing(mailing_id, data)
    except HeraldError as exc:
        return _form(request, form, from_error(exc), mailing_id, status=422)
    return redirect(f"/admin/mailings/{mailing_id}")


async def show_mailing(request: web.Request, notice: str | None = None, status: int = 200) -> web.Response:
    store, now = request.config_dict[store_key], request.config_dict[clock_key].now()
    mailing = await store.mailings.get(path_id(request))
    by_status = (await store.stats.by_mailing([mailing.id]))[mailing.id]
    query, errors = parse(MessageLogQuery(), {**_given(request), "limit": PAGE_SIZE})
    query = query or {"limit": PAGE_SIZE}
    messages = page(
        await store.messages.page(
            mailing_id=mailing.id, status=query.get("status"), after=query.get("after"), limit=PAGE_SIZE + 1
        ),
        PAGE_SIZE,
        list,
    )
    audience = await store.clients.audience_by_timezone(mailing.filter)
    return render(
        request,
        "mailing.html",
        {
            "mailing": mailing,
            "state": state(mailing, now),
            "progress": Progress.of(by_status),
            "by_status": by_status,
            "status_chart": column_chart(list(by_status.items())),
            "messages": messages["items"],
            "next_after": messages["next_after"],
            "status_filter": query.get("status", ""),
            "statuses": STATUSES,
            "audience": audience,
            "audience_total": sum(audience.values()),
            "errors": errors,
            "notice": notice,
        },
        status=status,
    )


async def mailing_progress(request: web.Request) -> web.Response:
    """What the live progress bars poll."""
    store, now = request.config_dict[store_key], request.config_dict[clock_key].now()
    mailing = await store.mailings.get(path_id(request))
    by_status = (await store.stats.by_mailing([mailing.id]))[mailing.id]
    progress = Progress.of(by_status)
    return web.json_response(
        {
            "state": state(mailing, now),
            "done": progress.done,
            "total": progress.total,
            "percent": progress.percent,
            "by_status": by_status,
        }
    )


async def audience_preview(request: web.Request) -> web.Response:
    """How many clients a filter typed into the form selects, by timezone (the form's preview button)."""
    typed = {key: words(request.query.get(f"filter.{key}", "")) for key in ("operator_codes", "tags")}
    client_filter, errors = parse(FilterIn(), typed)
    if client_filter is None:
        return web.json_response({"errors": errors}, status=422)
    audience = await request.config_dict[store_key].clients.audience_by_timezone(client_filter)
    return web.json_response({"total": sum(audience.values()), "by_timezone": audience})


async def confirm_delete_mailing(request: web.Request) -> web.Response:
    mailing = await request.config_dict[store_key].mailings.get(path_id(request))
    return render(
        request,
        "confirm_delete.html",
        {
            "what": f"mailing #{mailing.id}",
            "detail": mailing.text,
            "consequence": "Its messages not yet sent are cancelled; sent ones stay in the statistics.",
            "back": f"/admin/mailings/{mailing.id}",
        },
    )


async def delete_mailing(request: web.Request) -> web.Response:
    await request.config_dict[service_key].delete_mailing(path_id(request))
    return redirect("/admin/mailings")


async def pause_mailing(request: web.Request) -> web.Response:
    return await _act(request, lambda service, mailing_id: service.pause_mailing(mailing_id))


async def resume_mailing(request: web.Request) -> web.Response:
    return await _act(request, lambda service, mailing_id: service.resume_mailing(mailing_id))


async def retry_failed(request: web.Request) -> web.Response:
    return await _act(request, lambda service, mailing_id: service.retry_failed(mailing_id))


async def _act(request: web.Request, action: Callable[[Service, int], Awaitable[object]]) -> web.Response:
    """A button on the mailing's page: do it, then show the page again (or why it could not be done)."""
    mailing_id = path_id(request)
    try:
        await action(request.config_dict[service_key], mailing_id)
    except Conflict as exc:
        return error_page(request, 409, exc.detail)
    return redirect(f"/admin/mailings/{mailing_id}")


async def test_send(request: web.Request) -> web.Response:
    """Send the mailing's text to one phone now, and show how it went on the mailing's page."""
    mailing_id = path_id(request)
    data, errors = parse(TestSendIn(), {"phone": str((await request.post()).get("phone", ""))})
    if data is None:
        return await show_mailing(request, "Test send: " + " ".join(errors.get("phone", [])), status=422)
    result = await send_test(request, mailing_id, data["phone"])
    told = (
        "accepted by the external API"
        if result["sent"]
        else f"not accepted: {result['outcome']} {result['detail']}".rstrip()
    )
    return await show_mailing(request, f"Test send to {data['phone']} (msgId {result['msg_id']}): {told}.")
