"""Security headers on every answer, checked the way a scanner would: every route of the router's own table, in
both auth modes; CORS only where configured; a too large body is a 413 problem+json."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from herald.config import Config, ConfigError, load_config
from tests.conftest import AppFactory, Probe
from tests.oidc import IdentityProvider, oidc_config

PUBLIC_URL = "https://herald.example"
CRM = "https://crm.example"


def routes(app: web.Application) -> Iterator[tuple[str, str]]:
    """(method, a concrete path) for every route, the admin UI's sub-application included (its paths carry its
    prefix already)."""
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            yield from routes(resource._app)  # the sub-app's own table: aiohttp has no public accessor for it
        elif isinstance(resource, web.StaticResource):
            directory: Path = resource.get_info()["directory"]
            yield "GET", f"{resource.canonical}/{min(p.name for p in directory.iterdir() if p.is_file())}"
        else:
            for route in resource:
                yield route.method, resource.canonical.replace("{id}", "1")


def policy(header: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (directive.split() for directive in header.split(";"))}


async def check_every_route(api: TestClient, *, provider: str | None, https: bool) -> int:
    checked = 0
    for method, path in routes(api.server.app):
        response = await api.request(method, path, allow_redirects=False)
        headers = response.headers
        where = f"{method} {path} ({response.status})"
        assert "Server" not in headers, where
        assert headers["X-Content-Type-Options"] == "nosniff", where
        assert headers["Referrer-Policy"] == "same-origin", where
        assert ("Strict-Transport-Security" in headers) == https, where
        csp = policy(headers["Content-Security-Policy"])
        assert csp["frame-ancestors"] == ["'none'"], where
        if path.startswith("/api/"):
            assert csp == {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}, where
            assert (headers.get("Cache-Control") == "no-store") == (path != "/api/v1/openapi.json"), where
        elif path.startswith(("/docs", "/static/swagger/")):
            # Swagger UI's bundle injects style elements; its scripts are files of this origin all the same.
            assert csp["default-src"] == ["'self'"] and "script-src" not in csp, where
        else:
            assert csp["default-src"] == ["'self'"] and set(csp) <= {
                "default-src", "form-action", "base-uri", "object-src", "frame-ancestors"
            }, where  # fmt: skip
            assert csp["base-uri"] == ["'none'"] and csp["object-src"] == ["'none'"], where
            assert csp["form-action"] == ["'self'", *([provider] if provider else [])], where
            assert headers["X-Frame-Options"] == "DENY", where
        checked += 1
    return checked


async def test_every_answer_of_a_herald_without_login_has_the_headers(api: TestClient) -> None:
    assert await check_every_route(api, provider=None, https=False) > 40


async def test_every_answer_of_a_herald_behind_a_provider_has_the_headers(
    start_herald: AppFactory, config: Config, idp: IdentityProvider
) -> None:
    auth = oidc_config(config, idp, public_url=PUBLIC_URL, client_id="herald-admin", session_secret="s" * 32).auth
    api = await start_herald(auth=vars(auth))
    assert await check_every_route(api, provider=idp.issuer, https=True) > 40


async def test_the_emulator_names_no_server(probe: Probe) -> None:
    async with TestClient(probe.server) as client:
        response = await client.get("/_probe/stats")
        assert response.status == 200 and "Server" not in response.headers


async def test_no_cors_unless_configured(api: TestClient) -> None:
    response = await api.get("/api/v1/clients", headers={"Origin": CRM})
    assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers
    preflight = await api.options("/api/v1/clients", headers={"Origin": CRM, "Access-Control-Request-Method": "POST"})
    assert preflight.status == 405 and "Access-Control-Allow-Origin" not in preflight.headers


async def test_cors_for_the_configured_origins_only(
    start_herald: AppFactory, config: Config, idp: IdentityProvider
) -> None:
    api = await start_herald(
        http={"cors_origins": f"{CRM}, https://other.example"}, auth=vars(oidc_config(config, idp).auth)
    )
    asking = {"Origin": CRM, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    preflight = await api.options("/api/v1/clients", headers=asking)
    assert preflight.status == 204  # no token in a preflight, and none needed
    assert preflight.headers["Access-Control-Allow-Origin"] == CRM
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    # An error is readable by the calling page too, and credentials (cookies) are never allowed.
    refused = await api.post("/api/v1/clients", headers={"Origin": CRM})
    assert refused.status == 401 and refused.headers["Access-Control-Allow-Origin"] == CRM
    assert refused.headers["Vary"] == "Origin" and "Access-Control-Allow-Credentials" not in refused.headers
    stranger = await api.get("/api/v1/clients", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers
    admin = await api.get("/admin/login", headers={"Origin": CRM}, allow_redirects=False)
    assert "Access-Control-Allow-Origin" not in admin.headers  # the API's, not the admin UI's


async def test_cors_for_any_origin_never_with_credentials(start_herald: AppFactory) -> None:
    api = await start_herald(http={"cors_origins": "*"})
    response = await api.get("/api/v1/clients", headers={"Origin": CRM})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("origins", ["https://crm.example/app", "crm.example", "https://a.example,ftp://b.example"])
def test_cors_origins_are_origins(origins: str) -> None:
    with pytest.raises(ConfigError, match=r"http\.cors_origins"):
        load_config(env={"HERALD_HTTP_CORS_ORIGINS": origins})


async def test_a_body_above_the_limit_is_a_413_problem(api: TestClient) -> None:
    body = b'{"phone": "79001234567", "timezone": "UTC", "tag": "' + b"x" * 2**21 + b'"}'
    response = await api.post("/api/v1/clients", data=io.BytesIO(body), headers={"Content-Type": "application/json"})
    assert response.status == 413 and response.content_type == "application/problem+json"
    assert (await api.get("/api/v1/clients")).status == 200
    assert (await (await api.get("/api/v1/clients")).json())["items"] == []
