"""The API keeps the contract its OpenAPI document states: Schemathesis fuzzes a live Herald on the real database, in
both auth modes, with every check and the stateful phase; and the served document is the committed one."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from herald.api.openapi import without_security
from herald.app import Role
from herald.config import Config
from tests.conftest import AppFactory
from tests.oidc import IdentityProvider, oidc_config

REPO = Path(__file__).parents[2]
COMMITTED = REPO / "docs" / "openapi.json"
SCHEMATHESIS = Path(sys.executable).with_name("st")
SETTINGS = Path(__file__).with_name("schemathesis.toml")
# Enough to reach every operation and status in each phase while the suite stays fast; the seed makes a failure
# reproducible with the command the test prints.
MAX_EXAMPLES = 20
SEED = 20261204
RUN_LIMIT_S = 300


@pytest.fixture
async def open_api(start_herald: AppFactory) -> TestClient:
    return await start_herald(roles=frozenset({Role.API}))


@pytest.fixture
async def closed_api(start_herald: AppFactory, config: Config, idp: IdentityProvider) -> TestClient:
    return await start_herald(roles=frozenset({Role.API}), auth=vars(oidc_config(config, idp).auth))


async def served(api: TestClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await api.get("/api/v1/openapi.json", headers=headers or {})
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


async def schemathesis(api: TestClient, tmp_path: Path, *headers: str) -> None:
    base = str(api.make_url("")).rstrip("/")
    command = [
        str(SCHEMATHESIS), "--config-file", str(SETTINGS), "run", f"{base}/api/v1/openapi.json", "--url", base,
        "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--generation-database", "none", "--no-color", "--workers", "1",
        "--report", "junit", "--report-dir", str(tmp_path),
        *(arg for header in headers for arg in ("--header", header)),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the settings' hooks are a module of the tests
    process = await asyncio.create_subprocess_exec(
        *command, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    # The server runs on this event loop: Schemathesis is awaited, never waited for.
    output, _ = await asyncio.wait_for(process.communicate(), RUN_LIMIT_S)
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"{' '.join(command)}\n{text}"


async def test_the_served_document_is_the_committed_one(open_api: TestClient, closed_api: TestClient) -> None:
    committed = json.loads(COMMITTED.read_text())
    assert await served(closed_api) == committed, "regenerate docs/openapi.json: see README, API"
    assert await served(open_api) == without_security(committed)


async def test_the_api_keeps_its_contract_without_login(open_api: TestClient, tmp_path: Path) -> None:
    await schemathesis(open_api, tmp_path)


async def test_the_api_keeps_its_contract_with_login(
    closed_api: TestClient, idp: IdentityProvider, tmp_path: Path
) -> None:
    await schemathesis(closed_api, tmp_path, f"Authorization: Bearer {idp.token(roles=['admin'])}")
