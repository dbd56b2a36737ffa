"""Clients in bulk: imports from CSV and NDJSON with per-line errors, their progress, and the export."""

from __future__ import annotations

import io
import json

from tests.helpers import add_clients, add_mailing, eventually

CSV = "text/csv"
NDJSON = "application/x-ndjson"


async def import_file(api, body: str | bytes, content_type: str = CSV, mode: str = "insert") -> dict:
    """POST an import and wait until it is no longer running; returns its resource."""
    response = await api.post(f"/api/v1/clients/import?mode={mode}", data=body, headers={"Content-Type": content_type})
    assert response.status == 202, await response.text()
    location = response.headers["Location"]

    async def finished():
        got = await (await api.get(location)).json()
        return got if got["status"] != "running" else None

    return await eventually(finished)


async def client_api_errors(api, **fields) -> dict:
    response = await api.post("/api/v1/clients", json=fields)
    assert response.status == 422
    return (await response.json())["errors"]


async def test_a_csv_import_creates_skips_and_explains_each_refused_line(api):
    (existing,) = await add_clients(api, 1)
    body = (
        "phone,operator_code,tag,timezone\n"
        "79001112233,,vip,Europe/Moscow\n"  # 2: created, operator code from the phone
        "7900,900,,Europe/Moscow\n"  # 3: a bad phone
        f"{existing['phone']},,,UTC\n"  # 4: exists: skipped
        "79001112244,901,,Mars/Olympus\n"  # 5: a bad zone
        "79001112233,,other,UTC\n"  # 6: the phone of line 2: skipped
        "\n"  # a blank line is not data
        "79001112255,,,UTC,extra\n"  # 8: one column too many
    )
    result = await import_file(api, body)
    assert result["status"] == "done" and (result["line"], result["lines"]) == (8, 7)
    assert {k: result[k] for k in ("processed", "created", "updated", "skipped", "failed")} == {
        "processed": 6,
        "created": 1,
        "updated": 0,
        "skipped": 2,
        "failed": 3,
    }
    assert [error["line"] for error in result["errors"]] == [3, 5, 8]
    assert result["errors"][0]["errors"] == await client_api_errors(api, phone="7900", timezone="Europe/Moscow")
    assert result["errors"][1]["errors"] == await client_api_errors(api, phone="79001112244", timezone="Mars/Olympus")
    clients = (await (await api.get("/api/v1/clients?tag=vip")).json())["items"]
    assert [(c["phone"], c["operator_code"], c["timezone"]) for c in clients] == [
        ("79001112233", "900", "Europe/Moscow")
    ]


async def test_an_ndjson_upsert_updates_what_changed_and_fails_lines_that_are_not_objects(api):
    first, second = await add_clients(api, 2, tag="old")
    lines = [
        {"phone": first["phone"], "tag": "new", "timezone": first["timezone"]},  # updated
        {"phone": second["phone"], "tag": "old", "timezone": second["timezone"]},  # unchanged
        {"phone": "79005554433", "timezone": "UTC"},  # created
    ]
    body = "\n".join([json.dumps(lines[0]), "not json", json.dumps(lines[1]), "[1, 2]", json.dumps(lines[2])])
    result = await import_file(api, body, NDJSON, mode="upsert")
    assert {k: result[k] for k in ("processed", "created", "updated", "skipped", "failed")} == {
        "processed": 5,
        "created": 1,
        "updated": 1,
        "skipped": 0,
        "failed": 2,
    }
    assert [(e["line"], e["errors"]) for e in result["errors"]] == [
        (2, {"_line": ["Not a JSON object."]}),
        (4, {"_line": ["Not a JSON object."]}),
    ]
    assert (await (await api.get(f"/api/v1/clients/{first['id']}")).json())["tag"] == "new"


async def test_an_export_imported_again_changes_nothing(api):
    await add_clients(api, 3, tag="a")
    await add_clients(api, 2, start=10, tag=None)
    response = await api.get("/api/v1/clients/export")
    assert response.status == 200 and response.content_type == CSV
    exported = await response.text()
    assert exported.splitlines()[0] == "phone,operator_code,tag,timezone" and len(exported.splitlines()) == 6
    result = await import_file(api, exported, mode="upsert")
    assert (result["processed"], result["created"], result["updated"], result["failed"]) == (5, 0, 0, 0)
    tagged = await (await api.get("/api/v1/clients/export?tag=a")).text()
    assert len(tagged.splitlines()) == 4


async def test_a_bad_header_a_foreign_type_and_a_body_too_large_are_refused(start_herald):
    api = await start_herald(http={"import_max_mb": 1, "stats_max_age_s": 0.0})
    response = await api.post("/api/v1/clients/import", data="phone,tag\n", headers={"Content-Type": CSV})
    assert response.status == 422 and "header" in (await response.json())["errors"]
    response = await api.post("/api/v1/clients/import", data="{}", headers={"Content-Type": "application/json"})
    assert response.status == 415 and response.content_type == "application/problem+json"
    big = io.BytesIO(("phone,operator_code,tag,timezone\n" + "79000000000,,,UTC\n" * 70_000).encode())
    response = await api.post("/api/v1/clients/import", data=big, headers={"Content-Type": CSV})
    assert response.status == 413 and response.content_type == "application/problem+json"
    response = await api.post("/api/v1/clients/import?mode=merge", data="x", headers={"Content-Type": CSV})
    assert response.status == 422


async def test_an_import_cut_by_a_restart_says_where_it_stopped_and_an_upsert_completes_it(start_herald, store, clock):
    body = "phone,operator_code,tag,timezone\n" + "".join(f"7900{i:07d},,,UTC\n" for i in range(20_000))
    api = await start_herald()
    response = await api.post("/api/v1/clients/import", data=body, headers={"Content-Type": CSV})
    assert response.status == 202
    location = response.headers["Location"]
    await api.close()  # the process stops mid-import
    api = await start_herald()
    cut = await (await api.get(location)).json()
    assert cut["status"] == "failed" and cut["line"] < 20_001 and cut["detail"]
    assert cut["created"] == len(await store.clients.page(after=None, limit=20_000))
    result = await import_file(api, body, mode="upsert")
    assert (result["status"], result["created"] + cut["created"], result["failed"]) == ("done", 20_000, 0)


async def test_an_import_whose_process_died_is_failed_once_its_lease_runs_out(api, store, clock):
    started = await store.imports.create("insert", CSV, 10, "a-process-that-died", clock.now())
    assert (await (await api.get(f"/api/v1/imports/{started.id}")).json())["status"] == "running"
    clock.advance(61)
    gone = await (await api.get(f"/api/v1/imports/{started.id}")).json()
    assert (gone["status"], gone["detail"]) == ("failed", "the process running the import stopped")
    assert (await api.get("/api/v1/imports/999999")).status == 404


async def test_a_test_send_reaches_the_api_with_an_id_no_message_has(api, store, probe):
    mailing = await add_mailing(api, text="Try me", start_at="2026-06-01T13:00:00Z")
    response = await api.post(f"/api/v1/mailings/{mailing['id']}/test", json={"phone": "79991234567"})
    result = await response.json()
    assert response.status == 200 and result["sent"] is True and result["outcome"] == "ok"
    assert result["msg_id"] >= 2**62 and probe.accepted() == {result["msg_id"]: 1}
    assert probe.state.ledger.bodies[result["msg_id"]] == {
        "id": result["msg_id"],
        "phone": 79991234567,
        "text": "Try me",
    }
    assert await store.messages.page(limit=10, mailing_id=mailing["id"]) == []
    probe.fail_next("503")
    second = await (await api.post(f"/api/v1/mailings/{mailing['id']}/test", json={"phone": "79991234567"})).json()
    assert (second["sent"], second["outcome"], second["msg_id"]) == (False, "5xx", result["msg_id"] + 1)
    response = await api.post(f"/api/v1/mailings/{mailing['id']}/test", json={"phone": "123"})
    assert response.status == 422
