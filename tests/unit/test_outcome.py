from datetime import UTC, datetime

import pytest

from herald.domain.outcome import Verdict, classify, parse_retry_after

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_success_needs_code_zero():
    assert classify(200, b'{"code": 0, "message": "OK"}').verdict is Verdict.SENT


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"", b'{"code": 1, "message": "no"}', b"[]", b"null"])
def test_200_with_a_malformed_body_is_retried(body):
    outcome = classify(200, body)
    assert (outcome.verdict, outcome.reason) == (Verdict.RETRY, "malformed")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(status):
    assert classify(status, b"").verdict is Verdict.RETRY


def test_throttling_is_retried_and_keeps_retry_after():
    outcome = classify(429, b"", retry_after_s=7.0)
    assert (outcome.verdict, outcome.reason, outcome.retry_after_s) == (Verdict.RETRY, "429", 7.0)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_a_configuration_problem_not_a_failure(status):
    assert classify(status, b"").verdict is Verdict.AUTH


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_client_errors_fail_the_message(status):
    assert classify(status, b'{"code": 400}').verdict is Verdict.FAILED


def test_retry_after_in_seconds_or_as_a_date():
    assert parse_retry_after("30", NOW) == 30.0
    assert parse_retry_after("Mon, 01 Jun 2026 12:00:45 GMT", NOW) == 45.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None
