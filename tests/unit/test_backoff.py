import random

from herald.domain.backoff import retry_delay


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
