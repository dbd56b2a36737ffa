"""Shared fixtures: a real FerretDB (or $HERALD_MONGO_URL), a fresh database per test, the emulator on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo import AsyncMongoClient

from herald.app import ALL_ROLES, Role, create_app
from herald.clock import FakeClock
from herald.config import Config, load_config
from herald.localdb import LocalFerretDB, free_port
from herald.probe.app import ProbeState, create_probe_app, make_token, probe_state_key
from herald.store import Store
from herald.store.db import Database, connect, ensure_indexes
from tests.helpers import T0


@pytest.fixture(scope="session")
def mongo_base_url() -> Iterator[str]:
    """A MongoDB-compatible server for the whole run: $HERALD_MONGO_URL if set, else a FerretDB of our own."""
    if url := os.environ.get("HERALD_MONGO_URL"):
        yield url
        return
    server = LocalFerretDB().start()
    try:
        yield server.url("herald")
    finally:
        server.stop()


@pytest.fixture
async def db_url(mongo_base_url: str) -> AsyncIterator[str]:
    """A database of the test's own, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(mongo_base_url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_base_url)
    await client.drop_database(name)
    await client.close()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    client = connect(db_url)
    database = client.get_default_database()
    await ensure_indexes(database)
    yield database
    await client.close()


@pytest.fixture
def store(db: Database) -> Store:
    return Store.over(db)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@dataclass
class Probe:
    server: TestServer
    state: ProbeState

    @property
    def url(self) -> str:
        return str(self.server.make_url("/v1"))

    def fail_next(self, fault: str, count: int = 1) -> None:
        self.state.faults.update({"script": [*self.state.faults.script, {"fault": fault, "count": count}]})

    def accepted(self) -> dict[int, int]:
        return dict(self.state.ledger.accepted)

    def requests_at_or_after(self, when: datetime) -> int:
        return sum(1 for _, at, _ in self.state.ledger.arrivals if at >= when)


@pytest.fixture
async def probe(base_config: Config, clock: FakeClock) -> AsyncIterator[Probe]:
    app = create_probe_app(base_config.probe, clock=clock)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield Probe(server, app[probe_state_key])
    await server.close()


@pytest.fixture
def base_config(db_url: str) -> Config:
    config = load_config(env={})
    return config.replace(
        mongo={"url": db_url},
        http={"stats_max_age_s": 0.0},  # statistics as of each request: tests read them right after a change
        dispatch={"poll_s": 0.02, "backoff_base_s": 1.0, "backoff_cap_s": 60.0, "grace_s": 2.0},
        planner={"poll_s": 0.02, "batch_size": 50},
        sender={"timeout_s": 2.0},
    )


@pytest.fixture
def config(base_config: Config, probe: Probe) -> Config:
    return base_config.replace(sender={"url": probe.url, "token": make_token(base_config.probe.jwt_secret)})


AppFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def start_herald(config: Config, clock: FakeClock) -> AsyncIterator[AppFactory]:
    """Start Herald (all roles unless told) on loopback; returns an HTTP client. Several may run at once."""
    clients: list[TestClient] = []

    async def start(roles: frozenset[Role] = ALL_ROLES, **changes: Any) -> TestClient:
        app = create_app(config.replace(**changes) if changes else config, clock=clock, roles=roles)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        await client.close()


class Workers:
    """`herald worker` processes of a test, against its database and emulator, quick to poll."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(self, **env: str) -> subprocess.Popen[bytes]:
        # The developer's own HERALD_* settings stay out: the process sees the test's configuration only.
        environment = {
            **{key: value for key, value in os.environ.items() if not key.startswith("HERALD_")},
            "HERALD_MONGO_URL": self._config.mongo.url,
            "HERALD_SENDER_URL": self._config.sender.url,
            "HERALD_SENDER_TOKEN": self._config.sender.token,
            "HERALD_HTTP_WORKER_PORT": str(free_port()),
            "HERALD_LOG_LEVEL": "WARNING",
            "HERALD_DISPATCH_POLL_S": "0.05",
            "HERALD_PLANNER_POLL_S": "0.05",
            **env,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "herald", "worker"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.started.append(process)
        return process


@pytest.fixture
def workers(config: Config) -> Iterator[Workers]:
    """Start `herald worker` processes with workers.spawn(); every one still running at the end is killed."""
    processes = Workers(config)
    yield processes
    for process in processes.started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
async def api(start_herald: AppFactory) -> TestClient:
    """Herald with every role, as `herald serve` runs it."""
    return await start_herald()
