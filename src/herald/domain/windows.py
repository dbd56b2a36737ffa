"""Daily send windows in the client's local time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from herald.domain.models import SendWindow


def is_open(window: SendWindow, local: time) -> bool:
    if window.start < window.end:
        return window.start <= local < window.end
    return local >= window.start or local < window.end


def window_opening(window: SendWindow | None, tz: ZoneInfo, now: datetime) -> datetime:
    """The earliest moment at or after `now` when the client's local time is inside the window.

    Wall-clock times are resolved by zoneinfo: an opening inside a DST gap (a local time that does not exist)
    resolves to the instant after the gap, an ambiguous one to its first occurrence.
    """
    if window is None:
        return now
    local = now.astimezone(tz)
    if is_open(window, local.time().replace(tzinfo=None)):
        return now
    day = local.date()
    if local.time() >= window.start:
        day += timedelta(days=1)
    opening = datetime.combine(day, window.start, tzinfo=tz).astimezone(UTC)
    # A DST gap may push the wall clock past the target; never answer a time before `now`.
    return max(opening, now)
