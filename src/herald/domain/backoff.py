"""How long a message waits before its next delivery attempt."""

from __future__ import annotations

import random


def retry_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with equal jitter: at least half the step, so retries never bunch up at zero.

    `attempt` is the number of attempts made so far (1 after the first failure).
    """
    step = min(cap_s, base_s * 2 ** max(attempt - 1, 0))
    return step / 2 + (rng or random).uniform(0, step / 2)
