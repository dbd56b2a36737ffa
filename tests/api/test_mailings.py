import pytest

PROBLEM = "application/problem+json"
VALID = {"text": "Sale today", "start_at": "2026-06-01T15:00:00+03:00", "end_at": "2026-06-02T15:00:00+03:00"}


async def create(api, **fields):
    response = await api.post("/api/v1/mailings", json={**VALID, **fields})
    assert response.status == 201, await response.text()
    return await response.json()


async def test_create_with_defaults_and_times_in_utc(api):
    mailing = await create(api)
    assert mailing["start_at"] == "2026-06-01T12:00:00+00:00" and mailing["end_at"] == "2026-06-02T12:00:00+00:00"
    assert mailing["filter"] == {"operator_codes": [], "tags": []} and mailing["send_window"] is None
    assert mailing["state"] == "running"  # the clock stands at T0 = start
    assert await (await api.get(f"/api/v1/mailings/{mailing['id']}")).json() == mailing


async def test_filter_and_window_round_trip(api):
    mailing = await create(
        api,
        filter={"operator_codes": ["901", "900", "900"], "tags": ["vip"]},
        send_window={"start": "22:00", "end": "06:30"},
    )
    assert mailing["filter"] == {"operator_codes": ["900", "901"], "tags": ["vip"]}
    assert mailing["send_window"] == {"start": "22:00", "end": "06:30"}


async def test_state_follows_the_clock(api):
    future = await create(api, start_at="2026-06-05T00:00:00Z", end_at="2026-06-06T00:00:00Z")
    past = await create(api, start_at="2026-05-01T00:00:00Z", end_at="2026-05-02T00:00:00Z")
    assert (future["state"], past["state"]) == ("scheduled", "ended")


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"start_at": "2026-06-01T15:00:00"}, "start_at"),
        ({"end_at": "tomorrow"}, "end_at"),
        ({"end_at": "2026-06-01T15:00:00+03:00"}, "end_at"),
        ({"end_at": "2026-06-01T14:00:00+03:00"}, "end_at"),
        ({"text": ""}, "text"),
        ({"text": "x" * 1001}, "text"),
        ({"filter": {"operator_codes": ["9000"]}}, "filter"),
        ({"filter": {"tags": [{"$ne": None}]}}, "filter"),
        ({"filter": {"phones": ["1"]}}, "filter"),
        ({"filter": None}, "filter"),
        ({"send_window": {"start": "25:00", "end": "06:00"}}, "send_window"),
        ({"send_window": {"start": "9:00", "end": "18:00"}}, "send_window"),
        ({"send_window": {"start": "09:00", "end": "09:00"}}, "send_window"),
        ({"send_window": {"start": "09:00"}}, "send_window"),
        ({"$where": "1"}, "$where"),
    ],
)
async def test_invalid_mailings_are_422_naming_the_field(api, fields, bad):
    response = await api.post("/api/v1/mailings", json={**VALID, **fields})
    assert response.status == 422 and response.content_type == PROBLEM
    assert bad in (await response.json())["errors"]
    assert (await (await api.get("/api/v1/mailings")).json())["items"] == []


async def test_patch_checks_end_after_start_against_stored_values(api):
    mailing = await create(api)
    response = await api.patch(f"/api/v1/mailings/{mailing['id']}", json={"end_at": "2026-06-01T11:00:00Z"})
    assert response.status == 422 and "end_at" in (await response.json())["errors"]
    assert (await (await api.get(f"/api/v1/mailings/{mailing['id']}")).json())["end_at"] == mailing["end_at"]


async def test_patch_changes_fields(api):
    mailing = await create(api)
    response = await api.patch(
        f"/api/v1/mailings/{mailing['id']}",
        json={"text": "New text", "send_window": {"start": "09:00", "end": "18:00"}},
    )
    changed = await response.json()
    assert response.status == 200 and changed["text"] == "New text"
    assert changed["send_window"] == {"start": "09:00", "end": "18:00"} and changed["start_at"] == mailing["start_at"]
    cleared = await (await api.patch(f"/api/v1/mailings/{mailing['id']}", json={"send_window": None})).json()
    assert cleared["send_window"] is None


async def test_delete_hides_the_mailing(api):
    mailing = await create(api)
    assert (await api.delete(f"/api/v1/mailings/{mailing['id']}")).status == 204
    assert (await api.get(f"/api/v1/mailings/{mailing['id']}")).status == 404
    assert (await api.patch(f"/api/v1/mailings/{mailing['id']}", json={"text": "x"})).status == 404
    assert (await api.delete(f"/api/v1/mailings/{mailing['id']}")).status == 404
    assert (await (await api.get("/api/v1/mailings")).json())["items"] == []


async def test_list_pages(api):
    ids = [(await create(api))["id"] for _ in range(3)]
    first = await (await api.get("/api/v1/mailings", params={"limit": "2"})).json()
    second = await (await api.get("/api/v1/mailings", params={"limit": "2", "after": first["next_after"]})).json()
    assert [m["id"] for m in first["items"] + second["items"]] == ids and second["next_after"] is None
