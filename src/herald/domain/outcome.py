"""What one answer of the external API means for the message."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class Verdict(enum.Enum):
    SENT = "sent"
    RETRY = "retry"  # the API could not take it now: try again later
    AUTH = "auth"  # our credentials were refused: a configuration problem, retried without failing the message
    FAILED = "failed"  # the API rejected this message for good


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    reason: str  # a bounded label: ok, timeout, connection, 5xx, 429, malformed, auth, 4xx
    detail: str = ""
    retry_after_s: float | None = None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def classify(status: int, body: bytes, retry_after_s: float | None = None) -> Outcome:
    if status == 200:
        try:
            payload = json.loads(body)
        except ValueError:
            return Outcome(Verdict.RETRY, "malformed", f"200 with a body that is not JSON: {body[:80]!r}")
        if isinstance(payload, dict) and payload.get("code") == 0:
            return Outcome(Verdict.SENT, "ok")
        return Outcome(Verdict.RETRY, "malformed", f"200 without code 0: {body[:80]!r}")
    if status in (401, 403):
        return Outcome(Verdict.AUTH, "auth", f"HTTP {status}: the external API refused our token")
    if status == 429:
        return Outcome(Verdict.RETRY, "429", "HTTP 429: throttled", retry_after_s)
    if status >= 500 or status == 408:
        return Outcome(Verdict.RETRY, "5xx" if status >= 500 else "timeout", f"HTTP {status}", retry_after_s)
    if 400 <= status < 500:
        return Outcome(Verdict.FAILED, "4xx", f"HTTP {status}: {body[:200]!r}")
    return Outcome(Verdict.RETRY, "malformed", f"unexpected HTTP {status}")


def timed_out(detail: str = "no answer in time") -> Outcome:
    return Outcome(Verdict.RETRY, "timeout", detail)


def connection_failed(detail: str) -> Outcome:
    return Outcome(Verdict.RETRY, "connection", detail)
