"""Access control: who a request comes from (an OIDC bearer token or a static API token) and what they may do."""

from __future__ import annotations

from herald.auth.api_tokens import ApiTokens
from herald.auth.principal import LOCAL_OPERATOR, Principal, UserRole, principal_from_claims
from herald.auth.provider import InvalidToken, Provider, ProviderUnavailable
from herald.config import AuthConfig


class Authenticator:
    """Turns a bearer token into a Principal: a configured static token first, else a JWT from the provider."""

    def __init__(self, config: AuthConfig, provider: Provider) -> None:
        self._config = config
        self._api_tokens = ApiTokens(config.api_tokens)
        self.provider = provider

    async def bearer(self, token: str) -> Principal:
        """Raises InvalidToken or ProviderUnavailable."""
        principal = self._api_tokens.principal(token)
        if principal is not None:
            return principal
        claims = await self.provider.verify(token, audience=self._config.audience)
        return principal_from_claims(claims, self._config)


__all__ = [
    "LOCAL_OPERATOR",
    "Authenticator",
    "InvalidToken",
    "Principal",
    "Provider",
    "ProviderUnavailable",
    "UserRole",
]
