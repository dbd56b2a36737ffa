"""Flow control for requests to the external API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType


class Slots:
    """A semaphore whose size may change while it is held (the adaptive concurrency limit)."""

    def __init__(self, size: Callable[[], int]) -> None:
        self._size = size
        self._used = 0
        self._changed = asyncio.Condition()

    @property
    def used(self) -> int:
        return self._used

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._used < self._size())
            self._used += 1

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        async with self._changed:
            self._used -= 1
            self._changed.notify(max(1, self._size() - self._used))


class RateLimit:
    """At most `per_s` starts a second, evenly spaced; 0 means no limit."""

    def __init__(self, per_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1 / per_s if per_s > 0 else 0.0
        self._monotonic = monotonic
        self._next = 0.0

    async def wait(self) -> None:
        if not self._interval:
            return
        now = self._monotonic()
        start = max(now, self._next)
        self._next = start + self._interval
        if start > now:
            await asyncio.sleep(start - now)
