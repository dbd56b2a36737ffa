"""Helpers for tests: a fixed start time and polling for conditions that background workers bring about."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

# A Monday noon in UTC: far from any DST change in the zones the tests use.
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def csrf_of(admin: Any, path: str) -> str:
    """The admin UI's CSRF token, from a page with a form."""
    page = await (await admin.get(path)).text()
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until `check` returns something truthy; fail with its last value after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)


async def add_clients(api: Any, count: int, start: int = 0, **fields: Any) -> list[dict[str, Any]]:
    """Create clients through the API: phones 7900000000<start>..., Moscow time unless told."""
    clients = []
    for i in range(start, start + count):
        response = await api.post(
            "/api/v1/clients", json={"phone": f"7900{i:07d}", "timezone": "Europe/Moscow", **fields}
        )
        assert response.status == 201, await response.text()
        clients.append(await response.json())
    return clients


async def add_mailing(api: Any, **fields: Any) -> dict[str, Any]:
    """Create a mailing through the API; by default it started an hour before T0 and ends six hours after."""
    body = {"text": "Hello", "start_at": "2026-06-01T11:00:00Z", "end_at": "2026-06-01T18:00:00Z", **fields}
    response = await api.post("/api/v1/mailings", json=body)
    assert response.status == 201, await response.text()
    return await response.json()


async def counts(store: Any, mailing_id: int) -> dict[str, int]:
    """The mailing's non-zero message counts by status."""
    by_status = (await store.stats.by_mailing([mailing_id]))[mailing_id]
    return {status: n for status, n in by_status.items() if n}


async def wait_counts(store: Any, mailing_id: int, expected: dict[str, int], timeout: float = 10.0) -> None:
    last: dict[str, int] = {}

    async def check() -> bool:
        nonlocal last
        last = await counts(store, mailing_id)
        return last == expected

    try:
        await eventually(check, timeout)
    except AssertionError:
        raise AssertionError(f"counts of mailing {mailing_id} stayed {last}, expected {expected}") from None


async def insert_clients(db: Any, count: int, now: datetime = T0) -> None:
    """A directory of clients 1..count written straight to the database (the API's one-by-one path is tested
    elsewhere), in batches the server takes in one command."""
    for first in range(1, count + 1, 5000):
        await db.clients.insert_many(
            [
                {
                    "_id": i,
                    "phone": f"79{i:09d}",
                    "operator_code": "900",
                    "tag": None,
                    "timezone": "UTC",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(first, min(first + 5000, count + 1))
            ]
        )


class CommandRecorder(CommandListener):
    """The commands a PyMongo client sends (PyMongo's command monitoring), of the given names."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.commands: list[dict[str, Any]] = []

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name in self.names:
            self.commands.append(dict(event.command))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass
