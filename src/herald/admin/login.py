"""Signing operators in through the OpenID provider: authorization code with PKCE, then a session cookie."""

from __future__ import annotations

import base64
import hashlib
import logging
from urllib.parse import urlencode

from aiohttp import web

from herald.admin.common import render
from herald.admin.guard import error_page, redirect
from herald.admin.session import LOGIN_COOKIE, SESSION_COOKIE, LoginState, Session, session_key, sessions_key
from herald.app_keys import authenticator_key, config_key
from herald.auth import InvalidToken, ProviderUnavailable
from herald.auth.principal import principal_from_claims

log = logging.getLogger(__name__)


def _challenge(verifier: str) -> str:
    """PKCE S256: the provider gets the hash now and the verifier with the code, so a stolen code is useless."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _own_url(request: web.Request, path: str) -> str:
    """An absolute URL of ours for the provider to send the browser back to."""
    if public_url := request.config_dict[config_key].auth.public_url:
        return public_url.rstrip("/") + path
    return str(request.url.with_path(path).with_query(None))


def _safe_next(path: str | None) -> str:
    # Only our own pages: an open redirect would let a link send the operator anywhere after login.
    return path if path and path.startswith("/admin/") and not path.startswith("//") else "/admin/"


async def login(request: web.Request) -> web.StreamResponse:
    config = request.config_dict[config_key].auth
    if not config.admin_ui_login:
        return redirect("/admin/")
    try:
        metadata = await request.config_dict[authenticator_key].provider.metadata()
    except ProviderUnavailable:
        log.exception("cannot start a login: the identity provider is unreachable")
        return error_page(request, 503, "The identity provider is unreachable; try again in a moment.")
    state = LoginState.start(_safe_next(request.query.get("next")))
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": _own_url(request, "/admin/callback"),
            "scope": config.scopes,
            "state": state.state,
            "nonce": state.nonce,
            "code_challenge": _challenge(state.verifier),
            "code_challenge_method": "S256",
        }
    )
    response = redirect(f"{metadata['authorization_endpoint']}?{query}")
    request.app[sessions_key].write_login(response, request, state)
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    config = request.config_dict[config_key].auth
    sessions = request.app[sessions_key]
    state = sessions.read_login(request)
    if "error" in request.query:
        return error_page(request, 401, f"The provider refused the login: {request.query['error']}.")
    if state is None or request.query.get("state") != state.state or "code" not in request.query:
        return error_page(request, 400, "This login link is stale or was not started here. Sign in again.")
    provider = request.config_dict[authenticator_key].provider
    form = {
        "grant_type": "authorization_code",
        "code": request.query["code"],
        "code_verifier": state.verifier,
        "redirect_uri": _own_url(request, "/admin/callback"),
        "client_id": config.client_id,
    }
    if config.client_secret:
        form["client_secret"] = config.client_secret
    try:
        tokens = await provider.exchange_code(form)
        claims = await provider.verify(str(tokens.get("id_token", "")), audience=config.client_id, nonce=state.nonce)
    except InvalidToken as exc:
        log.warning("login failed", extra={"reason": str(exc)})
        return error_page(request, 401, f"Login failed: {exc}.")
    except ProviderUnavailable:
        log.exception("cannot finish a login: the identity provider is unreachable")
        return error_page(request, 503, "The identity provider is unreachable; try again in a moment.")
    principal = principal_from_claims(claims, config)
    if not principal.can_read:
        return error_page(
            request,
            403,
            f"{principal.name} holds neither the viewer nor the admin role in the claim {config.roles_claim!r}.",
        )
    log.info("operator signed in", extra={"subject": principal.subject, "role": principal.role})
    response = redirect(state.next)
    sessions.write(response, request, Session.start(principal))
    sessions.clear(response, LOGIN_COOKIE)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """End Herald's session, then the provider's (RP-initiated logout), so the next login asks for credentials."""
    if not request.config_dict[config_key].auth.admin_ui_login:
        return redirect("/admin/")  # nobody signs in here, so nobody signs out
    log.info("operator signed out", extra={"subject": request[session_key].principal.subject})
    logged_out = _own_url(request, "/admin/logged-out")
    location = "/admin/logged-out"
    try:
        end_session = (await request.config_dict[authenticator_key].provider.metadata()).get("end_session_endpoint")
    except ProviderUnavailable:
        end_session = None  # Herald's session ends all the same
    if end_session:
        client_id = request.config_dict[config_key].auth.client_id
        location = f"{end_session}?{urlencode({'client_id': client_id, 'post_logout_redirect_uri': logged_out})}"
    response = redirect(location)
    request.app[sessions_key].clear(response, SESSION_COOKIE)
    return response


async def logged_out(request: web.Request) -> web.Response:
    return render(request, "logged_out.html", {})
