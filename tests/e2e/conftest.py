"""Browser tests: Herald on loopback with a real OpenID provider (npm oidc-provider, run by node) and Debian's
Chromium driven by Playwright. `scripts/test-deps` (run by scripts/test) installs both."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, async_playwright

from herald.app import create_app
from herald.clock import SYSTEM_CLOCK, Clock
from herald.config import Config
from herald.localdb import free_port

REPO = Path(__file__).resolve().parents[2]
PROVIDER_PACKAGE = REPO / ".local" / "oidc-provider"
SCREENSHOTS = Path(__file__).parent / "screenshots"
CLIENT_ID = "herald-admin"


def _require(what: str, present: bool) -> None:
    if not present:
        pytest.fail(f"{what} is missing: run scripts/test-deps (scripts/test does)")


@pytest.fixture
def clock() -> Clock:
    """A browser lives in real time: mailings start now and the progress bar moves while we watch."""
    return SYSTEM_CLOCK


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def herald_port() -> int:
    return free_port()


@pytest.fixture
def issuer(herald_port: int) -> Iterator[str]:
    """The OpenID provider, a node process on loopback that knows Herald's callback."""
    _require("node", shutil.which("node") is not None)
    _require("oidc-provider", (PROVIDER_PACKAGE / "node_modules" / "oidc-provider").is_dir())
    port = free_port()
    with subprocess.Popen(
        [
            "node",
            str(Path(__file__).parent / "oidc_provider.mjs"),
            str(PROVIDER_PACKAGE),
            str(port),
            CLIENT_ID,
            f"http://127.0.0.1:{herald_port}/admin/callback",
            "admin",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            if "listening" not in process.stdout.readline():
                pytest.fail(f"oidc-provider did not start (exit code {process.wait()})")
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
async def herald(config: Config, clock: Clock, issuer: str, herald_port: int) -> AsyncIterator[str]:
    """Herald with every role, the admin UI signing in through `issuer`; its base URL."""
    app = create_app(
        config.replace(
            auth={
                "mode": "oidc",
                "issuer": issuer,
                "audience": "herald",
                "client_id": CLIENT_ID,
                "session_secret": "e2e-session-secret",
            }
        ),
        clock=clock,
    )
    server = TestServer(app, host="127.0.0.1", port=herald_port)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    _require("chromium", executable is not None)
    async with async_playwright() as playwright:
        # Debian's Chromium, not a Playwright download: this machine reaches no browser CDN.
        browser = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        await browser.close()
