import random
from datetime import timedelta

from herald.domain.backoff import retry_at, retry_delay
from tests.helpers import T0


def test_delay_doubles_with_each_attempt_within_jitter():
    rng = random.Random(1)
    for attempt, step in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0)]:
        delays = [retry_delay(attempt, 2.0, 300.0, rng) for _ in range(200)]
        assert all(step / 2 <= d <= step for d in delays)
        assert max(delays) - min(delays) > step / 4  # jittered, not constant


def test_delay_is_capped():
    rng = random.Random(2)
    assert all(150.0 <= retry_delay(40, 2.0, 300.0, rng) <= 300.0 for _ in range(100))


def test_never_zero_so_retries_do_not_bunch_up():
    assert min(retry_delay(1, 1.0, 10.0, random.Random(seed)) for seed in range(500)) >= 0.5


def test_retries_that_fail_together_share_a_few_due_times():
    rng = random.Random(3)
    now, end = T0 + timedelta(milliseconds=123), T0 + timedelta(hours=1)
    for attempt in (1, 4, 8):
        delays = [retry_delay(attempt, 2.0, 300.0, rng) for _ in range(200)]
        due = [retry_at(now, d, end) for d in delays]
        assert all(at >= now + timedelta(seconds=d) for at, d in zip(due, delays, strict=True))  # never early
        assert all(
            at - (now + timedelta(seconds=d)) <= timedelta(seconds=max(1.0, d / 8))
            for at, d in zip(due, delays, strict=True)
        )  # and not much later
        assert len(set(due)) <= 10, (attempt, len(set(due)))


def test_rounding_never_costs_the_last_chance_before_the_end():
    now = T0 + timedelta(milliseconds=100)
    end = now + timedelta(seconds=1.5)
    assert retry_at(now, 1.2, end) == now + timedelta(seconds=1.2)
