"""Admin UI tests: Herald without login (auth.mode none, on loopback), or with a small OpenID provider."""

import pytest
from aiohttp.test_utils import TestClient

from herald.app import Role
from tests.conftest import AppFactory
from tests.oidc import idp  # noqa: F401 - the fixture


@pytest.fixture
async def admin(start_herald: AppFactory) -> TestClient:
    """The admin UI without login: the operator is an admin, in Moscow time."""
    client = await start_herald(roles=frozenset({Role.API}))
    client.session.cookie_jar.update_cookies({"herald_tz": "Europe/Moscow"})
    return client
