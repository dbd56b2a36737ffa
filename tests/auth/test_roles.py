"""Roles from a configurable claim, static API tokens, and the refusal to run open on a public address."""

from __future__ import annotations

import pytest

from herald.auth.api_tokens import ApiTokens, token_hash
from herald.auth.principal import UserRole, claim_values, role_from_claims
from herald.config import ConfigError, load_config

AUTH = load_config(env={}).auth


def test_a_claim_may_be_a_list_a_space_separated_string_or_a_nested_path() -> None:
    assert claim_values({"roles": ["admin", "x"]}, "roles") == ["admin", "x"]
    assert claim_values({"scope": "viewer admin"}, "scope") == ["viewer", "admin"]
    assert claim_values({"realm_access": {"roles": ["viewer"]}}, "realm_access.roles") == ["viewer"]
    assert claim_values({"https://herald.example/roles": ["admin"]}, "https://herald.example/roles") == ["admin"]
    assert claim_values({}, "roles") == []


def test_admin_wins_over_viewer_and_other_values_give_no_role() -> None:
    assert role_from_claims({"roles": ["viewer", "admin"]}, AUTH) is UserRole.ADMIN
    assert role_from_claims({"roles": ["viewer"]}, AUTH) is UserRole.VIEWER
    assert role_from_claims({"roles": ["billing"]}, AUTH) is None


def test_role_names_are_configurable() -> None:
    auth = load_config(env={"HERALD_AUTH_ROLES_CLAIM": "groups", "HERALD_AUTH_ADMIN_ROLE": "herald-admins"}).auth
    assert role_from_claims({"groups": ["herald-admins"]}, auth) is UserRole.ADMIN


def test_static_tokens_are_matched_by_their_hash() -> None:
    tokens = ApiTokens(f"viewer:{token_hash('s3cret')}, admin:{token_hash('root').upper()}")
    assert tokens.principal("s3cret").role is UserRole.VIEWER
    assert tokens.principal("root").role is UserRole.ADMIN
    assert tokens.principal("guess") is None


def test_malformed_static_tokens_stop_the_start() -> None:
    with pytest.raises(ConfigError, match=r"auth\.api_tokens"):
        load_config(env={"HERALD_AUTH_API_TOKENS": "admin:not-a-hash"})
    with pytest.raises(ConfigError, match=r"auth\.api_tokens"):
        load_config(env={"HERALD_AUTH_API_TOKENS": f"root:{token_hash('x')}"})


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "herald.example"])
def test_no_login_is_refused_off_loopback(host: str) -> None:
    with pytest.raises(ConfigError, match=r"auth\.mode: none is only allowed when http\.host is a loopback"):
        load_config(env={"HERALD_HTTP_HOST": host})


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_no_login_is_allowed_on_loopback(host: str) -> None:
    assert load_config(env={"HERALD_HTTP_HOST": host}).auth.mode == "none"


def test_oidc_needs_an_issuer_and_an_audience_and_the_ui_a_session_secret() -> None:
    env = {"HERALD_HTTP_HOST": "0.0.0.0", "HERALD_AUTH_MODE": "oidc"}
    with pytest.raises(ConfigError, match=r"auth\.issuer: required"):
        load_config(env=env)
    env |= {"HERALD_AUTH_ISSUER": "https://id.example", "HERALD_AUTH_AUDIENCE": "herald"}
    assert load_config(env=env).auth.mode == "oidc"
    with pytest.raises(ConfigError, match=r"auth\.session_secret: required"):
        load_config(env={**env, "HERALD_AUTH_CLIENT_ID": "herald-admin"})
