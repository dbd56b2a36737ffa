"""The API behind access control: bearer JWTs and static tokens, 401 and 403 as problem+json."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from herald.app import Role
from herald.auth.api_tokens import token_hash
from herald.config import Config
from tests.conftest import AppFactory
from tests.oidc import IdentityProvider, SigningKey, oidc_config

CLIENT = {"phone": "79001234567", "timezone": "Europe/Moscow"}


@pytest.fixture
async def api(start_herald: AppFactory, config: Config, idp: IdentityProvider) -> TestClient:
    auth = oidc_config(config, idp, api_tokens=f"viewer:{token_hash('metrics-bot')}").auth
    return await start_herald(roles=frozenset({Role.API}), auth=vars(auth))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_problem(response, status: int, detail: str) -> None:
    assert response.status == status
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["status"] == status
    assert detail in body["detail"]


async def test_no_credentials_get_401_with_a_challenge(api: TestClient) -> None:
    response = await api.get("/api/v1/clients")
    await assert_problem(response, 401, "Bearer")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ({"lifetime_s": -120}, "expired"),
        ({"aud": "someone-else"}, "another audience"),
        ({"iss": "https://impostor.test"}, "another issuer"),
        ({"key": SigningKey()}, "unknown key"),
    ],
)
async def test_bad_tokens_get_401(api: TestClient, idp: IdentityProvider, claims: dict, detail: str) -> None:
    await assert_problem(await api.get("/api/v1/clients", headers=bearer(idp.token(**claims))), 401, detail)


async def test_a_viewer_reads_but_may_not_write(api: TestClient, idp: IdentityProvider) -> None:
    headers = bearer(idp.token(roles=["viewer"]))
    assert (await api.get("/api/v1/mailings/stats", headers=headers)).status == 200
    response = await api.post("/api/v1/clients", json=CLIENT, headers=headers)
    await assert_problem(response, 403, "Only an admin")
    assert (await api.get("/api/v1/clients", headers=headers)).status == 200
    assert (await api.get("/api/v1/clients/export", headers=headers)).status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/clients/import",
        "/api/v1/mailings/1/pause",
        "/api/v1/mailings/1/resume",
        "/api/v1/mailings/1/retry-failed",
        "/api/v1/mailings/1/test",
    ],
)
async def test_a_viewer_may_not_import_or_act_on_a_mailing(api: TestClient, idp: IdentityProvider, path: str) -> None:
    response = await api.post(
        path,
        data=b"phone,operator_code,tag,timezone\n",
        headers={**bearer(idp.token(roles=["viewer"])), "Content-Type": "text/csv"},
    )
    await assert_problem(response, 403, "Only an admin")


async def test_an_admin_writes(api: TestClient, idp: IdentityProvider) -> None:
    response = await api.post("/api/v1/clients", json=CLIENT, headers=bearer(idp.token(roles=["admin"])))
    assert response.status == 201


async def test_a_user_without_a_role_gets_403(api: TestClient, idp: IdentityProvider) -> None:
    await assert_problem(await api.get("/api/v1/clients", headers=bearer(idp.token())), 403, "neither")


async def test_a_token_signed_with_a_rotated_key_is_accepted(api: TestClient, idp: IdentityProvider) -> None:
    assert (await api.get("/api/v1/clients", headers=bearer(idp.token(roles=["viewer"])))).status == 200
    new = idp.rotate()
    assert (await api.get("/api/v1/clients", headers=bearer(idp.token(key=new, roles=["viewer"])))).status == 200


async def test_a_static_token_carries_its_configured_role(api: TestClient) -> None:
    assert (await api.get("/api/v1/clients", headers=bearer("metrics-bot"))).status == 200
    await assert_problem(await api.post("/api/v1/clients", json=CLIENT, headers=bearer("metrics-bot")), 403, "admin")


async def test_health_and_docs_need_no_login(api: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/docs/", "/api/v1/openapi.json"):
        assert (await api.get(path)).status == 200, path


async def test_swagger_ui_can_authorize_with_a_bearer_token(api: TestClient) -> None:
    spec = await (await api.get("/api/v1/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert spec["security"] == [{"bearerAuth": []}]
