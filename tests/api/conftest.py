import pytest
from aiohttp.test_utils import TestClient

from herald.app import Role
from tests.conftest import AppFactory
from tests.oidc import idp  # noqa: F401 - the fixture


@pytest.fixture
async def api(start_herald: AppFactory) -> TestClient:
    """The HTTP API alone: these tests look at requests and stored state, not at delivery."""
    return await start_herald(roles=frozenset({Role.API}))
