"""Backpressure rules for the external API: a circuit breaker, and an adaptive limit on requests in flight.

Both are plain state machines over a monotonic time in seconds that the caller passes in.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, field


class BreakerState(enum.StrEnum):
    CLOSED = "closed"  # requests flow
    OPEN = "open"  # the API keeps failing: no requests until the pause is over
    HALF_OPEN = "half_open"  # the pause is over: a few probes decide between closed and open


@dataclass
class CircuitBreaker:
    """Opens when the API fails: a run of failures, or a high error rate over the last requests. After a pause it
    lets `trials` requests through (half-open) and decides by their failure rate, not by one unlucky request.

    It watches the API, not single messages: when closed, only a message's first failure counts (`counts=False`
    for a message that failed before), so a few messages that keep failing, each on its own backoff, never open it.
    In half-open state every trial counts. Each time the trials fail the pause doubles, up to `max_open_s`, so a
    long outage costs a few requests a minute rather than a stream of them.
    """

    failures_to_open: int = 10
    error_rate_to_open: float = 0.5
    window: int = 50
    open_s: float = 2.0
    max_open_s: float = 60.0
    trials: int = 10

    state: BreakerState = BreakerState.CLOSED
    _recent: deque[bool] = field(default_factory=deque)  # the last `window` outcomes, True for a failure
    _consecutive: int = 0
    _reopen_at: float = 0.0
    _pause_s: float = 0.0
    _trials_out: int = 0  # trials started
    _trial_results: list[bool] = field(default_factory=list)  # True for a failed trial

    def capacity(self, now: float) -> int | None:
        """How many more requests may start now: None for no limit (closed), 0 while open."""
        if self.state is BreakerState.OPEN and now >= self._reopen_at:
            self.state, self._trials_out, self._trial_results = BreakerState.HALF_OPEN, 0, []
        if self.state is BreakerState.CLOSED:
            return None
        if self.state is BreakerState.OPEN:
            return 0
        return self.trials - self._trials_out

    def allow(self, now: float) -> bool:
        """May a request start now? In half-open state a True answer takes one of the trials."""
        capacity = self.capacity(now)
        if capacity == 0:
            return False
        if self.state is BreakerState.HALF_OPEN:
            self._trials_out += 1
        return True

    def paused_for(self, now: float) -> float:
        """Seconds until requests may start again: 0 when they may start now."""
        return max(0.0, self._reopen_at - now) if self.state is BreakerState.OPEN else 0.0

    def record(self, failed: bool, now: float, *, counts: bool = True) -> BreakerState:
        """Take a request's outcome; `counts` is False for a failure of a message that had failed before.
        Returns the state after it."""
        if self.state is BreakerState.HALF_OPEN:
            self._trial_results.append(failed)
            self._decide_trials(now)
        elif self.state is BreakerState.CLOSED and (counts or not failed):
            self._recent.append(failed)
            if len(self._recent) > self.window:
                self._recent.popleft()
            self._consecutive = self._consecutive + 1 if failed else 0
            rate = sum(self._recent) / len(self._recent)
            if self._consecutive >= self.failures_to_open or (
                len(self._recent) >= self.window // 2 and rate >= self.error_rate_to_open
            ):
                self._open(now, self.open_s)
        # While open, a straggler sent before the breaker opened changes nothing.
        return self.state

    def _decide_trials(self, now: float) -> None:
        """Reopen as soon as the trials' failures reach the error rate, close as soon as they cannot."""
        failures = sum(self._trial_results)
        enough_to_reopen = math.ceil(self.error_rate_to_open * self.trials)
        if failures >= enough_to_reopen:
            self._open(now, self._pause_s * 2)
        elif len(self._trial_results) - failures > self.trials - enough_to_reopen:
            self._close()

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
    """How many requests may be in flight, learnt from the API's answers, as TCP learns a congestion window.

    It starts at `start` and, while answers are healthy, grows by one per success (doubling every round of
    requests) up to `threshold`, then by one per `limit` successes (additive increase) up to `maximum`. Overload
    halves it (at most once a cooldown: one slow burst is one signal) and sets the threshold there. `restart()`
    goes back to `start`, for an API just back from an outage: at most a handful of requests meet an API that is
    down again.
    """

    minimum: int
    maximum: int
    start: int = 10
    decrease: float = 0.5
    cooldown_s: float = 1.0
    limit: float = 0.0
    threshold: float = 0.0
    _last_decrease: float = float("-inf")

    def __post_init__(self) -> None:
        self.restart()

    @property
    def value(self) -> int:
        return max(self.minimum, int(self.limit))

    def restart(self) -> None:
        self.limit = float(min(max(self.start, self.minimum), self.maximum))
        self.threshold = float(self.maximum)

    def on_success(self) -> None:
        step = 1.0 if self.limit < self.threshold else 1 / self.limit
        self.limit = min(float(self.maximum), self.limit + step)

    def on_overload(self, now: float) -> bool:
        """Shrink, unless it shrank within the cooldown; True if it shrank."""
        if now - self._last_decrease < self.cooldown_s:
            return False
        self._last_decrease = now
        self.limit = self.threshold = max(float(self.minimum), self.limit * self.decrease)
        return True
