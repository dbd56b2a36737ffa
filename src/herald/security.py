"""Security headers on every answer (the admin UI, Swagger UI, the API, the probes), and CORS for the API only where
configured: the second wall behind escaping templates and checking tokens (OWASP ASVS V14.4)."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from herald.config import Config, split_list

API_PREFIX = "/api/"
SWAGGER_PREFIXES = ("/docs", "/static/swagger/")
UNCACHED_API_EXCEPT = frozenset({"/api/v1/openapi.json"})
# What a browser may send and read across origins when CORS is on: the API's own headers.
CORS_REQUEST_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
CORS_EXPOSED_HEADERS = "Location, X-Request-ID, Idempotent-Replayed"
CORS_METHODS = "GET, POST, PATCH, DELETE"
CORS_MAX_AGE_S = "600"
HSTS = "max-age=31536000"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def policies(config: Config) -> dict[str, str]:
    """Content-Security-Policy by kind of page. The admin UI runs its own script and stylesheet only; its forms
    post to itself, and logging out posts a form whose answer redirects to the provider (a redirect that
    form-action also governs). Swagger UI's bundle sets inline styles, so its page allows them; its scripts are
    its bundled files and Herald's initializer. JSON answers load nothing and are framed by nobody."""
    provider = f" {origin_of(config.auth.issuer)}" if config.auth.mode == "oidc" and config.auth.issuer else ""
    common = "base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
    return {
        "admin": f"default-src 'self'; form-action 'self'{provider}; {common}",
        "swagger": f"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        f"form-action 'none'; {common}",
        "api": "default-src 'none'; frame-ancestors 'none'",
    }


async def hide_server(request: web.Request, response: web.StreamResponse) -> None:
    """No `Server` header: no product and version for a scanner to look up (the emulator uses this too)."""
    response.headers.popall(hdrs.SERVER, None)


def setup_security(app: web.Application, config: Config) -> None:
    """Headers on every answer, errors and static files included (a response hook, not a middleware, sees them
    all); the CORS middleware is the caller's to place, before the API's access control."""
    csp = policies(config)
    strict_transport = config.auth.public_url.startswith("https://")

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        await hide_server(request, response)
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if strict_transport:
            headers.setdefault("Strict-Transport-Security", HSTS)
        path = request.path
        if path.startswith(API_PREFIX):
            headers.setdefault("Content-Security-Policy", csp["api"])
            if path not in UNCACHED_API_EXCEPT:
                headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
        elif path.startswith(SWAGGER_PREFIXES):
            headers.setdefault("Content-Security-Policy", csp["swagger"])
        else:
            headers.setdefault("Content-Security-Policy", csp["admin"])
            headers.setdefault("X-Frame-Options", "DENY")

    app.on_response_prepare.append(on_prepare)


def cors_middleware(config: Config) -> Middleware:
    """CORS for the API when `http.cors_origins` names origins (none by default): a listed origin, or any with "*",
    may call it from a browser. Credentials (cookies) are never allowed: the API takes bearer tokens, which a
    browser application sends itself."""
    allowed = frozenset(split_list(config.http.cors_origins))
    anyone = "*" in allowed

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        if not allowed or origin is None or not request.path.startswith(API_PREFIX):
            return await handler(request)
        if not anyone and origin not in allowed:
            return await handler(request)  # answered without CORS headers: the browser keeps it from the page
        cors = {hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: "*" if anyone else origin, hdrs.VARY: hdrs.ORIGIN}
        if request.method == hdrs.METH_OPTIONS and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
            return web.Response(status=204, headers={
                **cors,
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: CORS_METHODS,
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: CORS_REQUEST_HEADERS,
                hdrs.ACCESS_CONTROL_MAX_AGE: CORS_MAX_AGE_S,
            })  # fmt: skip
        response = await handler(request)
        response.headers.update({**cors, hdrs.ACCESS_CONTROL_EXPOSE_HEADERS: CORS_EXPOSED_HEADERS})
        return response

    return middleware
