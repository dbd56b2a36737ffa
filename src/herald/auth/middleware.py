"""The API's gate: 401 without valid credentials, 403 for a viewer that writes; both problem+json."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from herald.api.problems import problem
from herald.api.routes import OPENAPI_URL
from herald.app_keys import authenticator_key, config_key, principal_key
from herald.auth import Authenticator, InvalidToken, Provider, ProviderUnavailable

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
# Swagger UI must load the description before anyone can press Authorize.
PUBLIC_API_PATHS = frozenset({OPENAPI_URL})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def authenticator_ctx(app: web.Application) -> AsyncIterator[None]:
    """The provider client (discovery and keys are fetched lazily, so a provider outage does not stop Herald)."""
    config = app[config_key].auth
    async with aiohttp.ClientSession() as session:
        provider = Provider(session, config.issuer, refresh_min_s=config.jwks_refresh_min_s, leeway_s=config.leeway_s)
        app[authenticator_key] = Authenticator(config, provider)
        yield


def _unauthorized(detail: str) -> web.Response:
    response = problem(401, detail)
    response.headers["WWW-Authenticate"] = 'Bearer realm="herald"'
    return response


@web.middleware
async def api_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Health, metrics, the docs and the admin UI (which has its own login) stay outside this gate.
    if not request.path.startswith(API_PREFIX) or request.path in PUBLIC_API_PATHS:
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorized("Send Authorization: Bearer <token>.")
    try:
        principal = await request.app[authenticator_key].bearer(token.strip())
    except InvalidToken as exc:
        log.info("rejected a bearer token", extra={"reason": str(exc)})
        return _unauthorized(str(exc))
    except ProviderUnavailable:
        log.exception("cannot check a bearer token: the identity provider is unreachable")
        return problem(503, "The identity provider is unreachable; try again later.")
    if not principal.can_read:
        return problem(403, "Your identity holds neither the viewer nor the admin role.")
    if request.method not in READ_METHODS and not principal.can_write:
        return problem(403, "Only an admin may change things; you are a viewer.")
    request[principal_key] = principal
    return await handler(request)
