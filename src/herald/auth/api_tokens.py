"""Static bearer tokens for machine clients, configured as SHA-256 hashes so the config holds no secret."""

from __future__ import annotations

import hashlib

from herald.auth.principal import Principal, UserRole
from herald.config import split_list


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokens:
    def __init__(self, spec: str) -> None:
        """`spec` is auth.api_tokens, `role:sha256hex,...`, already checked by the config loader."""
        self._roles: dict[str, UserRole] = {}
        for entry in split_list(spec):
            role, _, digest = entry.partition(":")
            self._roles[digest.lower()] = UserRole(role)

    def principal(self, token: str) -> Principal | None:
        # A dict lookup by hash: the hash of a guess reveals nothing about the stored ones, so no timing leak.
        digest = token_hash(token)
        role = self._roles.get(digest)
        if role is None:
            return None
        return Principal(subject=f"api-token:{digest[:8]}", name=f"API token {digest[:8]}", role=role)
