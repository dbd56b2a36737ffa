import pytest

PROBLEM = "application/problem+json"
VALID = {"phone": "79001234567", "timezone": "Europe/Moscow"}


async def create(api, **fields):
    response = await api.post("/api/v1/clients", json={**VALID, **fields})
    assert response.status == 201, await response.text()
    return await response.json()


async def test_create_defaults_the_operator_code_from_the_phone(api):
    client = await create(api)
    assert client["operator_code"] == "900" and client["tag"] is None
    assert client["timezone"] == "Europe/Moscow" and isinstance(client["id"], int)
    response = await api.get(f"/api/v1/clients/{client['id']}")
    assert await response.json() == client


async def test_create_keeps_an_explicit_operator_code_and_tag(api):
    client = await create(api, operator_code="999", tag="vip")
    assert (client["operator_code"], client["tag"]) == ("999", "vip")


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"phone": "89001234567"}, "phone"),
        ({"phone": "7900123456"}, "phone"),
        ({"phone": 79001234567}, "phone"),
        ({"phone": {"$gt": ""}}, "phone"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"operator_code": "90"}, "operator_code"),
        ({"tag": "x" * 65}, "tag"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_invalid_fields_are_422_problems_naming_the_field(api, fields, bad):
    response = await api.post("/api/v1/clients", json={**VALID, **fields})
    assert response.status == 422 and response.content_type == PROBLEM
    body = await response.json()
    assert body["status"] == 422 and list(body["errors"]) == [bad]
    assert (await (await api.get("/api/v1/clients")).json())["items"] == []  # nothing written


async def test_missing_required_fields(api):
    body = await (await api.post("/api/v1/clients", json={})).json()
    assert set(body["errors"]) == {"phone", "timezone"}


async def test_a_body_that_is_not_json_is_a_400_problem(api):
    response = await api.post("/api/v1/clients", data="{oops", headers={"Content-Type": "application/json"})
    assert response.status == 400 and response.content_type == PROBLEM


async def test_a_duplicate_phone_is_a_409(api):
    await create(api)
    response = await api.post("/api/v1/clients", json=VALID)
    assert response.status == 409 and response.content_type == PROBLEM
    assert "phone" in (await response.json())["errors"]


async def test_patch_changes_only_the_given_fields(api):
    client = await create(api, tag="a")
    response = await api.patch(f"/api/v1/clients/{client['id']}", json={"tag": None, "timezone": "Asia/Tokyo"})
    assert response.status == 200
    changed = await response.json()
    assert (changed["tag"], changed["timezone"], changed["phone"]) == (None, "Asia/Tokyo", client["phone"])


async def test_patch_validates_and_needs_a_field(api):
    client = await create(api)
    assert (await api.patch(f"/api/v1/clients/{client['id']}", json={})).status == 422
    assert (await api.patch(f"/api/v1/clients/{client['id']}", json={"phone": "1"})).status == 422
    other = await create(api, phone="79990000000")
    assert (await api.patch(f"/api/v1/clients/{other['id']}", json={"phone": client["phone"]})).status == 409


async def test_delete_then_gone(api):
    client = await create(api)
    assert (await api.delete(f"/api/v1/clients/{client['id']}")).status == 204
    for method in (api.get, api.delete):
        response = await method(f"/api/v1/clients/{client['id']}")
        assert response.status == 404 and response.content_type == PROBLEM


@pytest.mark.parametrize("path", ["/api/v1/clients/abc", "/api/v1/clients/99999999999999999999", "/api/v1/nothing"])
async def test_unknown_paths_are_404_problems(api, path):
    response = await api.get(path)
    assert response.status == 404 and response.content_type == PROBLEM


async def test_wrong_method_is_405_with_allow(api):
    response = await api.put("/api/v1/clients/1")
    assert response.status == 405 and "PATCH" in response.headers["Allow"]


async def test_list_filters_and_pages_by_key(api):
    for i in range(5):
        await create(api, phone=f"7900000000{i}", tag="even" if i % 2 == 0 else "odd", operator_code=f"90{i % 2}")
    page = await (await api.get("/api/v1/clients", params={"limit": "2"})).json()
    assert len(page["items"]) == 2 and page["next_after"] == page["items"][-1]["id"]
    seen = [c["id"] for c in page["items"]]
    while page["next_after"] is not None:
        page = await (await api.get("/api/v1/clients", params={"limit": "2", "after": page["next_after"]})).json()
        seen += [c["id"] for c in page["items"]]
    assert seen == sorted(seen) and len(seen) == 5
    even = await (await api.get("/api/v1/clients", params={"tag": "even"})).json()
    assert [c["tag"] for c in even["items"]] == ["even"] * 3 and even["next_after"] is None
    odd_operator = await (await api.get("/api/v1/clients", params={"operator_code": "901"})).json()
    assert len(odd_operator["items"]) == 2


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "1001"}, {"after": "-1"}, {"limit": "x"}, {"unknown": "1"}]
)
async def test_bad_list_parameters_are_422(api, query):
    assert (await api.get("/api/v1/clients", params=query)).status == 422


async def test_request_id_is_echoed_and_generated(api):
    response = await api.get("/api/v1/clients", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    generated = (await api.get("/api/v1/clients")).headers["X-Request-ID"]
    assert len(generated) == 32
    problem = await (await api.get("/api/v1/clients/0", headers={"X-Request-ID": "req-9"})).json()
    assert problem["request_id"] == "req-9"
