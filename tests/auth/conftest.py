"""Access control tests run against a small OpenID provider on loopback."""

from tests.oidc import idp  # noqa: F401 - the fixture
