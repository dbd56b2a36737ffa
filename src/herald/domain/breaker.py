"""Backpressure rules for the external API: a circuit breaker, and an adaptive limit on requests in flight.

Both are plain state machines over a monotonic time in seconds that the caller passes in.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field


class BreakerState(enum.StrEnum):
    CLOSED = "closed"  # requests flow
    OPEN = "open"  # the API keeps failing: no requests until the pause is over
    HALF_OPEN = "half_open"  # the pause is over: a few probes decide between closed and open


@dataclass
class CircuitBreaker:
    """Opens after a run of failures or a high error rate, probes after a pause, closes on a successful probe.

    Each time a probe fails the pause doubles, up to `max_open_s`, so a long outage costs a few requests a
    minute rather than a stream of them.
    """

    failures_to_open: int = 10
    error_rate_to_open: float = 0.5
    window: int = 50
    open_s: float = 2.0
    max_open_s: float = 60.0
    probes: int = 1

    state: BreakerState = BreakerState.CLOSED
    _recent: deque[bool] = field(default_factory=deque)  # the last `window` outcomes, True for a failure
    _consecutive: int = 0
    _reopen_at: float = 0.0
    _pause_s: float = 0.0
    _probes_out: int = 0

    def capacity(self, now: float) -> int | None:
        """How many more requests may start now: None for no limit (closed), 0 while open or probing."""
        if self.state is BreakerState.OPEN and now >= self._reopen_at:
            self.state, self._probes_out = BreakerState.HALF_OPEN, 0
        if self.state is BreakerState.CLOSED:
            return None
        if self.state is BreakerState.OPEN:
            return 0
        return self.probes - self._probes_out

    def allow(self, now: float) -> bool:
        """May a request start now? In half-open state a True answer takes one of the probe slots."""
        capacity = self.capacity(now)
        if capacity == 0:
            return False
        if self.state is BreakerState.HALF_OPEN:
            if self._probes_out >= self.probes:
                return False
            self._probes_out += 1
        return True

    def paused_for(self, now: float) -> float:
        """Seconds until requests may start again: 0 when they may start now."""
        return max(0.0, self._reopen_at - now) if self.state is BreakerState.OPEN else 0.0

    def record(self, failed: bool, now: float) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self._probes_out = max(0, self._probes_out - 1)
            if failed:
                self._open(now, self._pause_s * 2)
            else:
                self._close()
            return
        if self.state is BreakerState.OPEN:
            return  # a straggler sent before the breaker opened
        self._recent.append(failed)
        if len(self._recent) > self.window:
            self._recent.popleft()
        self._consecutive = self._consecutive + 1 if failed else 0
        rate = sum(self._recent) / len(self._recent)
        if self._consecutive >= self.failures_to_open or (
            len(self._recent) >= self.window // 2 and rate >= self.error_rate_to_open
        ):
            self._open(now, self.open_s)

    def _open(self, now: float, pause_s: float) -> None:
        self.state = BreakerState.OPEN
        self._pause_s = min(max(pause_s, self.open_s), self.max_open_s)
        self._reopen_at = now + self._pause_s

    def _close(self) -> None:
        self.state = BreakerState.CLOSED
        self._recent.clear()
        self._consecutive = 0
        self._pause_s = 0.0


@dataclass
class AimdLimit:
    """How many requests may be in flight: +1 per `limit` successes, halved on overload (at most once a cooldown)."""

    minimum: int
    maximum: int
    decrease: float = 0.5
    cooldown_s: float = 1.0
    limit: float = 0.0
    _last_decrease: float = float("-inf")

    def __post_init__(self) -> None:
        self.limit = float(self.maximum) if not self.limit else self.limit

    @property
    def value(self) -> int:
        return max(self.minimum, int(self.limit))

    def on_success(self) -> None:
        self.limit = min(float(self.maximum), self.limit + 1 / self.limit)

    def on_overload(self, now: float) -> bool:
        """Shrink, unless it shrank within the cooldown (one slow burst is one signal); True if it shrank."""
        if now - self._last_decrease < self.cooldown_s:
            return False
        self._last_decrease = now
        self.limit = max(float(self.minimum), self.limit * self.decrease)
        return True
