"""Bearer JWTs checked against a live discovery document and JWKS: signature, issuer, audience, expiry, keys."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from herald.auth import InvalidToken, Provider
from tests.oidc import AUDIENCE, IdentityProvider, SigningKey


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def provider_for(idp: IdentityProvider, session: aiohttp.ClientSession, refresh_min_s: float = 0.0) -> Provider:
    return Provider(session, idp.issuer, refresh_min_s=refresh_min_s, leeway_s=0)


async def test_a_good_token_yields_its_claims(idp: IdentityProvider, session: aiohttp.ClientSession) -> None:
    claims = await provider_for(idp, session).verify(idp.token(roles=["admin"]), audience=AUDIENCE)
    assert claims["sub"] == "user-1"
    assert claims["roles"] == ["admin"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"lifetime_s": -60}, "token expired"),
        ({"aud": "https://elsewhere.test"}, "token is for another audience"),
        ({"iss": "https://impostor.test"}, "token is from another issuer"),
    ],
)
async def test_a_token_is_refused(
    idp: IdentityProvider, session: aiohttp.ClientSession, claims: dict, reason: str
) -> None:
    with pytest.raises(InvalidToken, match=reason):
        await provider_for(idp, session).verify(idp.token(**claims), audience=AUDIENCE)


async def test_a_token_signed_by_an_unknown_key_is_refused(
    idp: IdentityProvider, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(InvalidToken, match="unknown key"):
        await provider_for(idp, session).verify(idp.token(key=SigningKey()), audience=AUDIENCE)


async def test_a_forged_signature_under_a_known_kid_is_refused(
    idp: IdentityProvider, session: aiohttp.ClientSession
) -> None:
    forger = SigningKey()
    forger.kid = idp.keys[0].kid
    with pytest.raises(InvalidToken, match="Signature verification failed"):
        await provider_for(idp, session).verify(idp.token(key=forger), audience=AUDIENCE)


async def test_keys_are_cached(idp: IdentityProvider, session: aiohttp.ClientSession) -> None:
    provider = provider_for(idp, session)
    for _ in range(3):
        await provider.verify(idp.token(), audience=AUDIENCE)
    assert idp.jwks_fetches == 1


async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    idp: IdentityProvider, session: aiohttp.ClientSession
) -> None:
    provider = provider_for(idp, session)
    await provider.verify(idp.token(), audience=AUDIENCE)
    old = idp.keys[0]
    new = idp.rotate()
    assert (await provider.verify(idp.token(key=new), audience=AUDIENCE))["sub"] == "user-1"
    assert idp.jwks_fetches == 2
    with pytest.raises(InvalidToken, match="unknown key"):  # the provider withdrew it
        await provider.verify(idp.token(key=old), audience=AUDIENCE)


async def test_unknown_kids_do_not_hammer_the_provider(idp: IdentityProvider, session: aiohttp.ClientSession) -> None:
    provider = provider_for(idp, session, refresh_min_s=60)
    await provider.verify(idp.token(), audience=AUDIENCE)
    for _ in range(3):
        with pytest.raises(InvalidToken, match="unknown key"):
            await provider.verify(idp.token(key=SigningKey()), audience=AUDIENCE)
    assert idp.jwks_fetches == 1


async def test_the_nonce_must_match_when_given(idp: IdentityProvider, session: aiohttp.ClientSession) -> None:
    provider = provider_for(idp, session)
    token = idp.token(nonce="n-1")
    assert (await provider.verify(token, audience=AUDIENCE, nonce="n-1"))["nonce"] == "n-1"
    with pytest.raises(InvalidToken, match="nonce"):
        await provider.verify(token, audience=AUDIENCE, nonce="n-2")


async def test_garbage_is_not_a_jwt(idp: IdentityProvider, session: aiohttp.ClientSession) -> None:
    with pytest.raises(InvalidToken, match="not a JWT"):
        await provider_for(idp, session).verify("garbage", audience=AUDIENCE)
