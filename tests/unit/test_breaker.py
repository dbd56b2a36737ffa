from herald.domain.breaker import AimdLimit, BreakerState, CircuitBreaker


def failing(breaker: CircuitBreaker, times: int, now: float = 0.0) -> None:
    for _ in range(times):
        assert breaker.allow(now)
        breaker.record(True, now)


def test_a_run_of_failures_opens_the_breaker():
    breaker = CircuitBreaker(failures_to_open=5)
    failing(breaker, 4)
    assert breaker.state is BreakerState.CLOSED
    failing(breaker, 1)
    assert breaker.state is BreakerState.OPEN and not breaker.allow(0.1)
    assert breaker.paused_for(0.5) == 1.5


def test_a_high_error_rate_opens_it_even_without_a_run():
    breaker = CircuitBreaker(failures_to_open=100, error_rate_to_open=0.5, window=20)
    for i in range(20):
        breaker.allow(0)
        breaker.record(i % 2 == 0, 0)  # every other call fails
    assert breaker.state is BreakerState.OPEN


def test_occasional_failures_keep_it_closed():
    breaker = CircuitBreaker(failures_to_open=3, error_rate_to_open=0.5)
    for i in range(200):
        assert breaker.allow(0)
        breaker.record(i % 4 == 0, 0)  # one call in four fails
    assert breaker.state is BreakerState.CLOSED


def test_after_the_pause_one_probe_decides():
    breaker = CircuitBreaker(failures_to_open=1, open_s=2.0)
    failing(breaker, 1)
    assert not breaker.allow(1.9)
    assert breaker.allow(2.0) and breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow(2.0)  # only one probe at a time
    breaker.record(False, 2.1)
    assert breaker.state is BreakerState.CLOSED and breaker.allow(2.1)


def test_a_failed_probe_doubles_the_pause_up_to_the_cap():
    breaker = CircuitBreaker(failures_to_open=1, open_s=2.0, max_open_s=5.0)
    failing(breaker, 1, now=0)
    pauses = []
    now = 0.0
    for _ in range(4):
        now += breaker.paused_for(now)
        assert breaker.allow(now)
        breaker.record(True, now)
        pauses.append(breaker.paused_for(now))
    assert pauses == [4.0, 5.0, 5.0, 5.0]


def test_aimd_halves_on_overload_once_per_cooldown_and_grows_back():
    limit = AimdLimit(minimum=1, maximum=100, cooldown_s=1.0)
    assert limit.value == 100
    assert limit.on_overload(10.0) and limit.value == 50
    assert not limit.on_overload(10.5) and limit.value == 50
    assert limit.on_overload(11.0) and limit.value == 25
    for _ in range(25 * 10):
        limit.on_success()
    assert 30 <= limit.value <= 36  # about +1 per `limit` successes


def test_aimd_stays_within_bounds():
    limit = AimdLimit(minimum=2, maximum=8)
    for t in range(20):
        limit.on_overload(float(t))
    assert limit.value == 2
    for _ in range(1000):
        limit.on_success()
    assert limit.value == 8
