"""Signing in to the admin UI through the provider: authorization code with PKCE, session cookie, logout."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from herald.app import Role
from herald.config import Config
from tests.conftest import AppFactory
from tests.helpers import csrf_of
from tests.oidc import IdentityProvider, oidc_config

CLIENT_ID = "herald-admin"


@pytest.fixture
async def admin(start_herald: AppFactory, config: Config, idp: IdentityProvider) -> TestClient:
    auth = oidc_config(config, idp, client_id=CLIENT_ID, session_secret="test-secret-0123456789").auth
    return await start_herald(roles=frozenset({Role.API}), auth=vars(auth))


async def start_login(admin: TestClient, next_path: str = "/admin/") -> dict[str, str]:
    """Follow Herald to the provider; the authorization request's parameters."""
    response = await admin.get(next_path, allow_redirects=False)
    assert response.status == 303
    response = await admin.get(response.headers["Location"], allow_redirects=False)
    assert response.status == 303
    return {key: values[0] for key, values in parse_qs(urlsplit(response.headers["Location"]).query).items()}


async def finish_login(admin: TestClient, idp: IdentityProvider, request: dict[str, str], **claims) -> object:
    """The provider signs the user in and sends the browser back with a code."""
    idp.codes["code-1"] = idp.token(aud=CLIENT_ID, nonce=request["nonce"], **claims)
    return await admin.get(
        "/admin/callback", params={"code": "code-1", "state": request["state"]}, allow_redirects=False
    )


async def test_login_uses_the_code_flow_with_pkce(admin: TestClient, idp: IdentityProvider) -> None:
    request = await start_login(admin, "/admin/clients")
    assert request["response_type"] == "code"
    assert request["client_id"] == CLIENT_ID
    assert request["code_challenge_method"] == "S256"
    assert request["redirect_uri"].endswith("/admin/callback")
    response = await finish_login(admin, idp, request, roles=["admin"])
    assert (response.status, response.headers["Location"]) == (303, "/admin/clients")
    cookie = response.cookies["herald_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/admin/"
    (exchange,) = idp.token_requests
    verifier_hash = base64.urlsafe_b64encode(hashlib.sha256(exchange["code_verifier"].encode()).digest())
    assert verifier_hash.rstrip(b"=").decode() == request["code_challenge"]
    assert exchange["grant_type"] == "authorization_code"
    page = await admin.get("/admin/clients")
    assert page.status == 200
    assert "Ada" in await page.text()


async def test_a_viewer_sees_but_may_not_change(admin: TestClient, idp: IdentityProvider) -> None:
    await finish_login(admin, idp, await start_login(admin), roles=["viewer"])
    page = await (await admin.get("/admin/clients")).text()
    assert "New client" not in page
    csrf = await csrf_of(admin, "/admin/")
    response = await admin.post("/admin/clients/new", data={"csrf": csrf, "phone": "79001234567", "timezone": "UTC"})
    assert response.status == 403
    assert "Import" not in page
    upload = aiohttp.FormData({"mode": "insert"})
    upload.add_field("file", b"phone,operator_code,tag,timezone\n79001234567,,,UTC\n", filename="a.csv")
    assert (await admin.post(f"/admin/imports/new?csrf={csrf}", data=upload)).status == 403
    assert (await admin.post("/admin/mailings/1/pause", data={"csrf": csrf})).status == 403


async def test_a_user_without_a_role_is_not_let_in(admin: TestClient, idp: IdentityProvider) -> None:
    response = await finish_login(admin, idp, await start_login(admin), roles=["billing"])
    assert response.status == 403
    assert (await admin.get("/admin/", allow_redirects=False)).status == 303


async def test_a_forged_state_or_nonce_is_refused(admin: TestClient, idp: IdentityProvider) -> None:
    request = await start_login(admin)
    assert (await finish_login(admin, idp, {**request, "state": "forged"}, roles=["admin"])).status == 400
    assert (await finish_login(admin, idp, {**request, "nonce": "forged"}, roles=["admin"])).status == 401
    assert (await admin.get("/admin/", allow_redirects=False)).status == 303


async def test_logout_ends_the_session(admin: TestClient, idp: IdentityProvider) -> None:
    await finish_login(admin, idp, await start_login(admin), roles=["admin"])
    csrf = await csrf_of(admin, "/admin/")
    response = await admin.post("/admin/logout", data={"csrf": csrf}, allow_redirects=False)
    assert response.headers["Location"] == "/admin/logged-out"
    assert (await admin.get("/admin/", allow_redirects=False)).headers["Location"] == "/admin/login?next=/admin/"


async def test_a_session_cookie_edited_to_admin_is_ignored(admin: TestClient, idp: IdentityProvider) -> None:
    await finish_login(admin, idp, await start_login(admin), roles=["viewer"])
    url = admin.make_url("/admin/")
    payload, timestamp, signature = admin.session.cookie_jar.filter_cookies(url)["herald_session"].value.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["role"] == "viewer"
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "role": "admin"}).encode()).rstrip(b"=").decode()
    admin.session.cookie_jar.update_cookies({"herald_session": f"{forged}.{timestamp}.{signature}"}, url)
    assert (await admin.get("/admin/", allow_redirects=False)).status == 303


async def test_behind_a_proxy_the_public_url_is_used(
    start_herald: AppFactory, config: Config, idp: IdentityProvider
) -> None:
    auth = oidc_config(config, idp, client_id=CLIENT_ID, session_secret="s", public_url="https://herald.example").auth
    admin = await start_herald(roles=frozenset({Role.API}), auth=vars(auth))
    response = await admin.get("/admin/login", allow_redirects=False)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["redirect_uri"] == ["https://herald.example/admin/callback"]
    assert response.cookies["herald_login"]["secure"]


async def test_without_a_client_for_the_ui_there_is_no_ui(
    start_herald: AppFactory, config: Config, idp: IdentityProvider
) -> None:
    admin = await start_herald(roles=frozenset({Role.API}), auth=vars(oidc_config(config, idp).auth))
    assert (await admin.get("/admin/", allow_redirects=False)).status == 404
