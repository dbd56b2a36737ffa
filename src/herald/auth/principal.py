"""Who is calling and what they may do: two roles, read from a configurable claim."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from herald.config import AuthConfig


class UserRole(enum.StrEnum):
    VIEWER = "viewer"  # read lists and statistics
    ADMIN = "admin"  # everything


@dataclass(frozen=True)
class Principal:
    subject: str
    name: str
    role: UserRole | None  # None: a valid identity that holds neither role

    @property
    def can_read(self) -> bool:
        return self.role is not None

    @property
    def can_write(self) -> bool:
        return self.role is UserRole.ADMIN


# Loopback-only deployments (auth.mode none) run without login: whoever reaches the port is the operator.
LOCAL_OPERATOR = Principal(subject="local", name="local operator", role=UserRole.ADMIN)


def claim_values(claims: Mapping[str, Any], name: str) -> list[str]:
    """The claim's values as a list. A name with dots is first taken whole (Auth0's namespaced claims are URLs),
    then as a path into nested objects (Keycloak's `realm_access.roles`)."""
    value: Any = claims.get(name)
    if value is None and "." in name:
        value = claims
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


def role_from_claims(claims: Mapping[str, Any], config: AuthConfig) -> UserRole | None:
    values = claim_values(claims, config.roles_claim)
    if config.admin_role in values:
        return UserRole.ADMIN
    if config.viewer_role in values:
        return UserRole.VIEWER
    return None


def principal_from_claims(claims: Mapping[str, Any], config: AuthConfig) -> Principal:
    subject = str(claims.get("sub", ""))
    name = str(claims.get("name") or claims.get("preferred_username") or claims.get("email") or subject)
    return Principal(subject=subject, name=name, role=role_from_claims(claims, config))
