"""The admin UI without login (auth.mode none, loopback): pages, forms validated by the API's schemas, CSRF."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from herald.store import Store
from tests.helpers import add_clients, add_mailing, csrf_of


async def test_every_page_renders(admin: TestClient) -> None:
    await add_clients(admin, 2, tag="vip")
    mailing = await add_mailing(admin, filter={"tags": ["vip"]})
    for path in (
        "/admin/",
        "/admin/mailings",
        "/admin/mailings/new",
        f"/admin/mailings/{mailing['id']}",
        f"/admin/mailings/{mailing['id']}/edit",
        f"/admin/mailings/{mailing['id']}/delete",
        "/admin/clients",
        "/admin/clients/new",
        "/admin/clients/1/edit",
        "/admin/clients/1/delete",
        "/admin/static/admin.css",
        "/admin/static/admin.js",
    ):
        response = await admin.get(path)
        assert response.status == 200, path


async def test_a_form_without_the_csrf_token_is_refused(admin: TestClient, store: Store) -> None:
    await csrf_of(admin, "/admin/clients/new")  # a session exists
    form = {"phone": "79001234567", "timezone": "UTC"}
    response = await admin.post("/admin/clients/new", data={**form, "csrf": "forged"})
    assert response.status == 403
    assert await store.clients.page(after=None, limit=10) == []


async def test_without_login_there_is_no_logout_to_do(admin: TestClient) -> None:
    csrf = await csrf_of(admin, "/admin/clients/new")
    response = await admin.post("/admin/logout", data={"csrf": csrf}, allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/admin/")


async def test_a_client_is_created_edited_and_deleted(admin: TestClient, store: Store) -> None:
    csrf = await csrf_of(admin, "/admin/clients/new")
    response = await admin.post(
        "/admin/clients/new",
        allow_redirects=False,
        data={"csrf": csrf, "phone": "79001234567", "timezone": "Asia/Omsk", "tag": "vip"},
    )
    assert (response.status, response.headers["Location"]) == (303, "/admin/clients")
    (client,) = await store.clients.page(after=None, limit=10)
    assert (client.operator_code, client.tag) == ("900", "vip")
    await admin.post(
        f"/admin/clients/{client.id}/edit", data={"csrf": csrf, "phone": client.phone, "timezone": "UTC", "tag": ""}
    )
    changed = await store.clients.get(client.id)
    assert (changed.timezone, changed.tag) == ("UTC", None)
    await admin.post(f"/admin/clients/{client.id}/delete", data={"csrf": csrf})
    assert await store.clients.page(after=None, limit=10) == []


async def test_client_errors_are_the_apis_shown_inline(admin: TestClient) -> None:
    csrf = await csrf_of(admin, "/admin/clients/new")
    response = await admin.post("/admin/clients/new", data={"csrf": csrf, "phone": "123", "timezone": "Mars/Base"})
    page = await response.text()
    assert response.status == 422
    assert 'id="phone-error">Must be 11 digits starting with 7: 7XXXXXXXXXX.' in page
    assert 'id="timezone-error">Not a known IANA timezone' in page
    await admin.post("/admin/clients/new", data={"csrf": csrf, "phone": "79001234567", "timezone": "UTC"})
    taken = await admin.post("/admin/clients/new", data={"csrf": csrf, "phone": "79001234567", "timezone": "UTC"})
    assert 'id="phone-error">Already taken by another client.' in await taken.text()


async def test_clients_are_searched_filtered_and_paged(admin: TestClient) -> None:
    await add_clients(admin, 30, tag="vip")
    await add_clients(admin, 1, start=30, tag="new")
    first = await (await admin.get("/admin/clients?tag=vip")).text()
    assert first.count("<td>vip</td>") == 25
    assert "after=25" in first
    second = await (await admin.get("/admin/clients?tag=vip&after=25")).text()
    assert second.count("<td>vip</td>") == 5
    found = await (await admin.get("/admin/clients?q=79000000030")).text()
    assert "<td>new</td>" in found and "<td>vip</td>" not in found


MAILING_FORM = {
    "text": "Sale",
    "start_at": "2026-06-01T15:00",
    "end_at": "2026-06-01T21:00",
    "filter.operator_codes": "900",
    "filter.tags": "vip, new",
    "send_window.start": "09:00",
    "send_window.end": "20:00",
}


async def test_a_mailing_is_created_in_the_operators_timezone(admin: TestClient, store: Store) -> None:
    csrf = await csrf_of(admin, "/admin/mailings/new")
    response = await admin.post("/admin/mailings/new", data={"csrf": csrf, **MAILING_FORM}, allow_redirects=False)
    assert response.status == 303
    mailing_id = int(response.headers["Location"].rsplit("/", 1)[1])
    mailing = await store.mailings.get(mailing_id)
    assert mailing.start_at.isoformat() == "2026-06-01T12:00:00+00:00"  # 15:00 in Moscow
    assert mailing.filter.tags == ("new", "vip")
    edit = await (await admin.get(f"/admin/mailings/{mailing_id}/edit")).text()
    assert 'value="2026-06-01T15:00"' in edit


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"end_at": "2026-06-01T14:00"}, "end_at", "Must be after start_at."),
        ({"start_at": ""}, "start_at", "Not a valid datetime."),
        ({"filter.operator_codes": "90"}, "filter.operator_codes", "Must be 3 digits."),
        ({"send_window.end": "09:00"}, "send_window.end", "start and end must differ"),
        ({"send_window.end": ""}, "send_window.end", "Must be a time of day as HH:MM."),
    ],
)
async def test_mailing_errors_are_the_apis_shown_inline(
    admin: TestClient, changes: dict, field: str, message: str
) -> None:
    csrf = await csrf_of(admin, "/admin/mailings/new")
    response = await admin.post("/admin/mailings/new", data={"csrf": csrf, **MAILING_FORM, **changes})
    assert response.status == 422
    assert f'id="{field}-error">{message}' in await response.text()


async def test_a_mailing_page_shows_its_audience_counts_and_log(admin: TestClient) -> None:
    await add_clients(admin, 2, tag="vip")
    await add_clients(admin, 1, start=2, tag="vip", timezone="Asia/Omsk")
    mailing = await add_mailing(
        admin, start_at="2030-01-01T00:00:00Z", end_at="2030-01-02T00:00:00Z", filter={"tags": ["vip"]}
    )
    page = await (await admin.get(f"/admin/mailings/{mailing['id']}")).text()
    assert "Audience: 3 clients match" in page
    assert "<td>Europe/Moscow</td><td>2</td>" in page
    assert "<td>Asia/Omsk</td><td>1</td>" in page
    preview = await admin.get("/admin/mailings/audience?filter.tags=vip&filter.operator_codes=900")
    assert await preview.json() == {"total": 3, "by_timezone": {"Europe/Moscow": 2, "Asia/Omsk": 1}}
    progress = await (await admin.get(f"/admin/mailings/{mailing['id']}/progress")).json()
    assert progress["state"] == "scheduled" and progress["percent"] == 0


async def test_a_mailing_is_deleted_after_confirmation(admin: TestClient, store: Store) -> None:
    mailing = await add_mailing(admin)
    assert "This cannot be undone" in await (await admin.get(f"/admin/mailings/{mailing['id']}/delete")).text()
    csrf = await csrf_of(admin, f"/admin/mailings/{mailing['id']}/delete")
    response = await admin.post(f"/admin/mailings/{mailing['id']}/delete", data={"csrf": csrf}, allow_redirects=False)
    assert response.headers["Location"] == "/admin/mailings"
    assert (await admin.get(f"/admin/mailings/{mailing['id']}")).status == 404
