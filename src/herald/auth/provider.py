"""The OpenID provider: its discovery document, its signing keys (cached, refetched on rotation), and token checks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import jwt

log = logging.getLogger(__name__)

# Keys are refetched at least this often even without an unknown kid, so that a key the provider withdrew
# (e.g. after a leak) stops being trusted.
KEYS_MAX_AGE_S = 3600.0


class InvalidToken(Exception):
    """The token is not one Herald accepts; the message says why (safe to show the caller)."""


class ProviderUnavailable(Exception):
    """The provider's discovery document or keys could not be fetched."""


class Provider:
    def __init__(self, session: aiohttp.ClientSession, issuer: str, *, refresh_min_s: float, leeway_s: float) -> None:
        self._session = session
        self.issuer = issuer.rstrip("/")
        self._refresh_min_s = refresh_min_s
        self._leeway_s = leeway_s
        self._metadata: dict[str, Any] | None = None
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._keys_fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def metadata(self) -> dict[str, Any]:
        """The discovery document, fetched once; its issuer must be the configured one."""
        if self._metadata is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            document = await self._get_json(url)
            if str(document.get("issuer", "")).rstrip("/") != self.issuer:
                raise ProviderUnavailable(f"{url} names issuer {document.get('issuer')!r}, not {self.issuer!r}")
            self._metadata = document
        return self._metadata

    async def verify(self, token: str, *, audience: str, nonce: str | None = None) -> dict[str, Any]:
        """The token's claims if its signature, issuer, audience, expiry (and nonce, if given) hold."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("not a JWT") from exc
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[key.algorithm_name],
                audience=audience,
                issuer=(await self.metadata())["issuer"],
                leeway=self._leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("token is for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("token is from another issuer") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from exc
        if nonce is not None and claims.get("nonce") != nonce:
            raise InvalidToken("nonce mismatch")
        return claims

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        async with self._lock:
            stale = time.monotonic() - self._keys_fetched_at > KEYS_MAX_AGE_S
            # An unknown kid usually means the provider rotated its keys; refetch, but not more often than
            # refresh_min_s, so tokens with made-up kids cannot make Herald hammer the provider.
            unknown = self._known(kid) is None and time.monotonic() - self._keys_fetched_at >= self._refresh_min_s
            if stale or unknown:
                await self._fetch_keys()
        key = self._known(kid)
        if key is None:
            raise InvalidToken("token signed with an unknown key")
        return key

    def _known(self, kid: str | None) -> jwt.PyJWK | None:
        """The key a token names; a token that names none may use the provider's only key."""
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _fetch_keys(self) -> None:
        document = await self._get_json((await self.metadata())["jwks_uri"])
        keys: dict[str | None, jwt.PyJWK] = {}
        for jwk in document.get("keys", []):
            if jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[jwk.get("kid")] = jwt.PyJWK(jwk)
            except jwt.PyJWTError:
                log.warning("skipping a key Herald cannot use", extra={"kid": jwk.get("kid"), "kty": jwk.get("kty")})
        self._keys = keys
        self._keys_fetched_at = time.monotonic()
        log.info("provider keys fetched", extra={"kids": sorted(str(k) for k in keys)})

    async def exchange_code(self, form: Mapping[str, str]) -> dict[str, Any]:
        """POST the authorization-code grant to the token endpoint; the token response."""
        url = (await self.metadata())["token_endpoint"]
        try:
            async with self._session.post(url, data=dict(form), timeout=aiohttp.ClientTimeout(total=10)) as response:
                body = await response.json(content_type=None)
                if response.status != 200:
                    raise InvalidToken(f"token endpoint answered {response.status}: {body.get('error')}")
                return dict(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ProviderUnavailable(f"token endpoint {url}: {exc!r}") from exc

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                response.raise_for_status()
                return dict(await response.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ProviderUnavailable(f"{url}: {exc!r}") from exc
