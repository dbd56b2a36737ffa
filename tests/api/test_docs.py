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
