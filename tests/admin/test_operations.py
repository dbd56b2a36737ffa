"""The admin UI's bulk and operator actions: import a file, export the clients, pause, retry, test send."""

from __future__ import annotations

import csv
import io
import re

import aiohttp
from aiohttp.test_utils import TestClient

from herald.store import Store
from tests.helpers import add_clients, add_mailing, csrf_of, eventually

HEADER = "phone,operator_code,tag,timezone\n"


def upload(file: str, filename: str = "clients.csv", mode: str = "insert") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("mode", mode)
    form.add_field("file", file.encode(), filename=filename, content_type="application/octet-stream")
    return form


async def finished_page(admin: TestClient, location: str) -> str:
    async def done():
        progress = await (await admin.get(location + "/progress")).json()
        return progress if progress["state"] != "running" else None

    progress = await eventually(done)
    assert progress["percent"] == 100
    return await (await admin.get(location)).text()


async def test_a_file_uploaded_is_imported_and_its_refused_lines_listed(admin: TestClient, store: Store) -> None:
    csrf = await csrf_of(admin, "/admin/clients/new")
    assert 'href="/admin/imports/new"' in await (await admin.get("/admin/clients")).text()
    body = HEADER + "79001112233,,vip,Europe/Moscow\n7900,,,UTC\n79001112244,,,Mars/Olympus\n"
    response = await admin.post(f"/admin/imports/new?csrf={csrf}", data=upload(body), allow_redirects=False)
    assert response.status == 303
    location = response.headers["Location"]
    assert re.fullmatch(r"/admin/imports/\d+", location)
    page = await finished_page(admin, location)
    assert '<span class="badge done">done</span>' in page
    assert "<dt>Created</dt><dd>1</dd>" in page and "<dt>Refused</dt><dd>2</dd>" in page
    assert "<tr><td>3</td><td>phone</td><td>Must be 11 digits starting with 7: 7XXXXXXXXXX.</td></tr>" in page
    assert "<tr><td>4</td><td>timezone</td>" in page
    (client,) = await store.clients.page(after=None, limit=10)
    assert (client.phone, client.tag) == ("79001112233", "vip")


async def test_an_upsert_upload_of_ndjson_updates_the_clients(admin: TestClient, store: Store) -> None:
    (existing,) = await add_clients(admin, 1, tag="old")
    csrf = await csrf_of(admin, "/admin/clients/new")
    line = f'{{"phone": "{existing["phone"]}", "timezone": "Asia/Omsk", "tag": "new"}}\n'
    response = await admin.post(
        f"/admin/imports/new?csrf={csrf}", data=upload(line, "base.ndjson", "upsert"), allow_redirects=False
    )
    page = await finished_page(admin, response.headers["Location"])
    assert "<dt>Mode</dt><dd>upsert</dd>" in page and "<dt>Updated</dt><dd>1</dd>" in page
    changed = await store.clients.get(existing["id"])
    assert (changed.timezone, changed.tag) == ("Asia/Omsk", "new")


async def test_an_upload_without_the_token_a_file_or_a_known_format_imports_nothing(
    admin: TestClient, store: Store
) -> None:
    csrf = await csrf_of(admin, "/admin/clients/new")
    good = HEADER + "79001112233,,,UTC\n"
    assert (await admin.post("/admin/imports/new?csrf=forged", data=upload(good))).status == 403
    wrong = await admin.post(f"/admin/imports/new?csrf={csrf}", data=upload(good, "clients.xlsx"))
    assert wrong.status == 422 and "Not a CSV or NDJSON file." in await wrong.text()
    headless = await admin.post(f"/admin/imports/new?csrf={csrf}", data=upload("79001112233,,,UTC\n"))
    assert headless.status == 422 and 'role="alert"' in await headless.text()
    form = aiohttp.FormData()
    form.add_field("mode", "insert")
    empty = await admin.post(f"/admin/imports/new?csrf={csrf}", data=form)
    assert empty.status == 422 and "Choose a file to import." in await empty.text()
    assert await store.clients.page(after=None, limit=10) == []


async def test_the_export_is_the_filtered_clients_as_csv(admin: TestClient) -> None:
    await add_clients(admin, 3, tag="vip")
    await add_clients(admin, 2, start=3, tag="other")
    page = await (await admin.get("/admin/clients?tag=vip")).text()
    assert 'href="/admin/clients/export?tag=vip&amp;operator_code="' in page
    response = await admin.get("/admin/clients/export?tag=vip&operator_code=")
    assert response.status == 200 and response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert len(rows) == 3 and {row["tag"] for row in rows} == {"vip"}
    assert (await admin.get("/admin/clients/export?operator_code=12")).status == 422


async def test_a_mailing_is_paused_resumed_and_its_failed_retried_from_its_page(
    admin: TestClient, store: Store
) -> None:
    mailing = await add_mailing(admin, start_at="2026-06-01T13:00:00Z")
    path = f"/admin/mailings/{mailing['id']}"
    csrf = await csrf_of(admin, path)
    assert 'action="' + path + '/pause"' in await (await admin.get(path)).text()
    response = await admin.post(path + "/pause", data={"csrf": csrf}, allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, path)
    page = await (await admin.get(path)).text()
    assert '<span class="badge paused">paused</span>' in page and 'action="' + path + '/resume"' in page
    assert (await store.mailings.get(mailing["id"])).paused
    await admin.post(path + "/resume", data={"csrf": csrf})
    assert not (await store.mailings.get(mailing["id"])).paused
    assert (await admin.post(path + "/retry-failed", data={"csrf": csrf}, allow_redirects=False)).status == 303
    assert (await admin.post("/admin/mailings/999999/pause", data={"csrf": csrf})).status == 404


async def test_a_test_send_shows_how_the_external_api_answered(admin: TestClient, probe) -> None:
    mailing = await add_mailing(admin, text="Try me", start_at="2026-06-01T13:00:00Z")
    path = f"/admin/mailings/{mailing['id']}"
    csrf = await csrf_of(admin, path)
    page = await (await admin.post(path + "/test", data={"csrf": csrf, "phone": "79991234567"})).text()
    (msg_id,) = probe.accepted()
    assert f"Test send to 79991234567 (msgId {msg_id}): accepted by the external API." in page
    probe.fail_next("503")
    page = await (await admin.post(path + "/test", data={"csrf": csrf, "phone": "79991234567"})).text()
    assert f"(msgId {msg_id + 1}): not accepted: 5xx" in page
    response = await admin.post(path + "/test", data={"csrf": csrf, "phone": "123"})
    assert response.status == 422 and "Test send: Must be 11 digits" in await response.text()
