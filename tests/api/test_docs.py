from aiohttp.test_utils import TestClient, TestServer

from herald.app import Role, create_app
from herald.localdb import LocalFerretDB


async def test_openapi_describes_every_endpoint_with_schemas_and_errors(api):
    spec = await (await api.get("/api/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    expected = {
        "/api/v1/clients": {"get", "post"},
        "/api/v1/clients/{id}": {"get", "patch", "delete"},
        "/api/v1/mailings": {"get", "post"},
        "/api/v1/mailings/{id}": {"get", "patch", "delete"},
        "/api/v1/mailings/stats": {"get"},
        "/api/v1/mailings/{id}/stats": {"get"},
        "/api/v1/messages": {"get"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) - {"parameters"} == methods, path
        for method in methods:
            operation = paths[path][method]
            assert operation["summary"] and operation["responses"], (path, method)
    create = paths["/api/v1/mailings"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]
    assert "422" in create["responses"] and "201" in create["responses"]
    schemas = spec["components"]["schemas"]
    assert {"ClientCreate", "MailingCreate", "Problem", "StatsOut"} <= set(schemas)


async def test_the_document_states_what_validation_enforces(api):
    spec = await (await api.get("/api/v1/openapi.json")).json()
    schemas, paths = spec["components"]["schemas"], spec["paths"]
    # Mode none asks for no credentials, so the document asks for none.
    assert "security" not in spec and "securitySchemes" not in spec["components"]
    assert schemas["ClientPatch"]["minProperties"] == 1 and schemas["MailingPatch"]["minProperties"] == 1
    window = schemas["MailingPatch"]["properties"]["send_window"]
    assert window["allOf"] == [{"$ref": "#/components/schemas/WindowIn"}] and window["nullable"] is True
    assert schemas["WindowIn"]["required"] == ["end", "start"]
    assert schemas["WindowIn"]["properties"]["start"] == {
        "type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "09:00"
    }  # fmt: skip
    assert "Europe/Moscow" in schemas["ClientCreate"]["properties"]["timezone"]["enum"]
    for operations in paths.values():
        for operation in operations.values():
            assert operation["operationId"] and operation.get("requestBody", {"required": True})["required"]
    get_client = paths["/api/v1/clients/{id}"]["get"]
    assert get_client["parameters"] == [
        {"in": "path", "name": "id", "required": True,
         "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1}}
    ]  # fmt: skip
    links = paths["/api/v1/mailings"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == {
        "get_mailing", "update_mailing", "delete_mailing", "mailing_stats", "pause_mailing", "resume_mailing",
        "retry_failed", "test_send",
    }  # fmt: skip
    assert all(link["parameters"] == {"id": "$response.body#/id"} for link in links.values())


async def test_the_values_the_document_refuses_the_server_refuses(api):
    # Python's `$` admits a trailing newline and its `\d` any script's digits; the document's patterns do not.
    for phone in ["79001234567\n", "7900123456\u0663"]:
        response = await api.post("/api/v1/clients", json={"phone": phone, "timezone": "UTC"})
        assert response.status == 422 and "phone" in (await response.json())["errors"]
    for window in [{"start": "9:00", "end": "21:00"}, {"start": "24:00", "end": "21:00"}, {}]:
        response = await api.patch("/api/v1/mailings/1", json={"send_window": window})
        assert response.status == 422, window
    assert (await api.patch("/api/v1/clients/1", json={})).status == 422
    # A zone only the machine's own zoneinfo knows is not one the document lists.
    response = await api.post("/api/v1/clients", json={"phone": "79001234567", "timezone": "localtime"})
    assert response.status == 422 and "timezone" in (await response.json())["errors"]


async def test_swagger_ui_is_served_at_docs(api):
    response = await api.get("/docs/")
    assert response.status == 200 and "swagger" in (await response.text()).lower()
    redirect = await api.get("/docs", allow_redirects=False)
    assert redirect.status == 308 and redirect.headers["Location"] == "/docs/"


async def test_health_and_readiness(api):
    assert (await (await api.get("/healthz")).json()) == {"status": "ok"}
    assert (await (await api.get("/readyz")).json())["database"] == "ok"


async def test_not_ready_while_the_database_is_down(base_config, clock):
    server = LocalFerretDB().start()
    try:
        app = create_app(base_config.replace(mongo={"url": server.url("herald")}), clock=clock, roles={Role.API})
        async with TestClient(TestServer(app, host="127.0.0.1")) as api:
            assert (await api.get("/readyz")).status == 200
            server.stop()
            response = await api.get("/readyz")
            assert response.status == 503 and (await api.get("/healthz")).status == 200
    finally:
        server.stop()
