"""A small but real OpenID provider on loopback: a discovery document, a JWKS and a token endpoint served over
HTTP, RSA keys made here, and tokens signed with them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from herald.config import Config

AUDIENCE = "https://herald.test/api"


class SigningKey:
    def __init__(self) -> None:
        self.kid = uuid.uuid4().hex[:8]
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        return {
            **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key())),
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
        }


class IdentityProvider:
    """Publishes `keys`; `rotate()` replaces them, as a provider does on key rotation."""

    def __init__(self) -> None:
        self.keys = [SigningKey()]
        self.jwks_fetches = 0
        self.issuer = ""  # known once the server listens
        self.codes: dict[str, str] = {}  # authorization code -> the ID token it is exchanged for
        self.token_requests: list[dict[str, str]] = []

    def rotate(self) -> SigningKey:
        self.keys = [SigningKey()]
        return self.keys[0]

    def token(self, *, key: SigningKey | None = None, lifetime_s: float = 300, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "exp": now + lifetime_s,
            "name": "Ada",
            **claims,
        }
        key = key or self.keys[0]
        return jwt.encode(body, key.private, algorithm="RS256", headers={"kid": key.kid})

    def app(self) -> web.Application:
        async def discovery(request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "issuer": self.issuer,
                    "jwks_uri": f"{self.issuer}/jwks",
                    "authorization_endpoint": f"{self.issuer}/auth",
                    "token_endpoint": f"{self.issuer}/token",
                }
            )

        async def jwks(request: web.Request) -> web.Response:
            self.jwks_fetches += 1
            return web.json_response({"keys": [key.jwk() for key in self.keys]})

        async def token(request: web.Request) -> web.Response:
            form = dict(await request.post())
            self.token_requests.append(form)
            if form.get("code") not in self.codes:
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response({"id_token": self.codes.pop(form["code"]), "token_type": "Bearer"})

        app = web.Application()
        app.router.add_post("/token", token)
        app.router.add_get("/.well-known/openid-configuration", discovery)
        app.router.add_get("/jwks", jwks)
        return app


@pytest.fixture
async def idp() -> AsyncIterator[IdentityProvider]:
    provider = IdentityProvider()
    server = TestServer(provider.app(), host="127.0.0.1")
    await server.start_server()
    provider.issuer = str(server.make_url("")).rstrip("/")
    yield provider
    await server.close()


def oidc_config(config: Config, idp: IdentityProvider, **auth: Any) -> Config:
    """`config` with access control on, trusting `idp`, and refetching keys on any unknown kid."""
    return config.replace(
        auth={"mode": "oidc", "issuer": idp.issuer, "audience": AUDIENCE, "jwks_refresh_min_s": 0.0, **auth}
    )
