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


def test_after_the_pause_the_trials_decide_together():
    breaker = CircuitBreaker(failures_to_open=1, open_s=2.0, trials=10, error_rate_to_open=0.5)
    failing(breaker, 1)
    assert not breaker.allow(1.9)
    assert all(breaker.allow(2.0) for _ in range(10)) and breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow(2.0)  # ten trials at most
    for failed in (True, True, False, True, False, False, False, False, False):  # 3 failures, then a 6th success
        assert breaker.state is BreakerState.HALF_OPEN
        breaker.record(failed, 2.1)
    assert breaker.state is BreakerState.CLOSED and breaker.capacity(2.1) is None


def test_trials_that_fail_at_the_error_rate_reopen_it_at_once():
    breaker = CircuitBreaker(failures_to_open=1, open_s=2.0, trials=10, error_rate_to_open=0.5)
    failing(breaker, 1)
    for _ in range(10):
        breaker.allow(2.0)
    for failed in (False, True, True, True, True):
        breaker.record(failed, 2.5)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record(True, 2.5)  # the fifth failure of ten: half of them
    assert breaker.state is BreakerState.OPEN and breaker.paused_for(2.5) == 4.0


def test_failed_trials_double_the_pause_up_to_the_cap():
    breaker = CircuitBreaker(failures_to_open=1, open_s=2.0, max_open_s=5.0, trials=2)
    failing(breaker, 1, now=0)
    pauses = []
    now = 0.0
    for _ in range(4):
        now += breaker.paused_for(now)
        assert breaker.allow(now)
        breaker.record(True, now)
        pauses.append(breaker.paused_for(now))
    assert pauses == [4.0, 5.0, 5.0, 5.0]


def test_messages_that_keep_failing_do_not_open_it():
    breaker = CircuitBreaker(failures_to_open=3, error_rate_to_open=0.5, window=10)
    breaker.record(True, 0)  # a message's first failure counts
    for _ in range(50):  # then its retries, and those of others that failed before, do not
        breaker.record(True, 0, counts=False)
    assert breaker.state is BreakerState.CLOSED
    breaker.record(True, 0)
    breaker.record(True, 0)  # three first failures in a row: the API fails
    assert breaker.state is BreakerState.OPEN


def test_aimd_starts_small_and_doubles_while_answers_are_healthy():
    limit = AimdLimit(minimum=1, maximum=200, start=10)
    assert limit.value == 10
    for _ in range(10):  # a round of ten successful requests
        limit.on_success()
    assert limit.value == 20
    for _ in range(20 + 40 + 80):  # three more rounds: 40, 80, then the maximum
        limit.on_success()
    assert limit.value == 160
    for _ in range(100):
        limit.on_success()
    assert limit.value == 200


def test_aimd_halves_on_overload_once_per_cooldown_and_grows_back_slowly():
    limit = AimdLimit(minimum=1, maximum=100, start=100)
    assert limit.value == 100
    assert limit.on_overload(10.0) and limit.value == 50
    assert not limit.on_overload(10.5) and limit.value == 50
    assert limit.on_overload(11.0) and limit.value == 25
    for _ in range(25 * 10):
        limit.on_success()
    assert 30 <= limit.value <= 36  # past an overload, about +1 per `limit` successes


def test_aimd_restarts_small_for_an_api_back_from_an_outage():
    limit = AimdLimit(minimum=1, maximum=200, start=10)
    for t in range(5):
        limit.on_overload(float(t))
    limit.restart()
    assert limit.value == 10
    for _ in range(10):
        limit.on_success()
    assert limit.value == 20  # doubling again: the outage's halvings are forgotten


def test_aimd_stays_within_bounds():
    limit = AimdLimit(minimum=2, maximum=8)
    for t in range(20):
        limit.on_overload(float(t))
    assert limit.value == 2
    for _ in range(1000):
        limit.on_success()
    assert limit.value == 8
