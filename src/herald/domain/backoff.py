"""How long a message waits before its next delivery attempt."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

# Retry times are rounded up to a grid at least this wide, and about an eighth of the delay (a power of two).
MIN_GRID_S = 1.0


def retry_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with equal jitter: at least half the step, so retries never bunch up at zero.

    `attempt` is the number of attempts made so far (1 after the first failure).
    """
    step = longest_retry_delay(attempt, base_s, cap_s)
    return step / 2 + (rng or random).uniform(0, step / 2)


def longest_retry_delay(attempt: int, base_s: float, cap_s: float) -> float:
    """The most `retry_delay` waits after `attempt` attempts."""
    return min(cap_s, base_s * 2 ** max(attempt - 1, 0))


def retry_at(now: datetime, delay_s: float, end_at: datetime) -> datetime:
    """When to try again: `delay_s` from now, rounded up to a coarse grid unless that would reach `end_at`.

    Messages that fail together then share a handful of due times, so their outcomes are written in a few
    grouped updates rather than one per message (on FerretDB each update scans the collection). Rounding up
    never retries early, and never costs the last chance before the end.
    """
    exact = now + timedelta(seconds=delay_s)
    grid = max(MIN_GRID_S, 2.0 ** math.floor(math.log2(max(delay_s, MIN_GRID_S) / 8)))
    rounded = datetime.fromtimestamp(math.ceil(exact.timestamp() / grid) * grid, tz=UTC)
    return rounded if rounded < end_at else exact
