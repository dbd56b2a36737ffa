"""When a message may go out: the mailing's start and end, and the client's send window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from herald.domain.models import Mailing
from herald.domain.windows import window_opening


@dataclass(frozen=True)
class Send:
    deadline: datetime  # the request must be over by then: the mailing's end


@dataclass(frozen=True)
class Wait:
    until: datetime


@dataclass(frozen=True)
class Expire:
    pass


Decision = Send | Wait | Expire


def decide(mailing: Mailing, tz: ZoneInfo, now: datetime) -> Decision:
    if now >= mailing.end_at:
        return Expire()
    opening = window_opening(mailing.send_window, tz, max(now, mailing.start_at))
    if opening >= mailing.end_at:
        return Expire()
    if opening > now:
        return Wait(opening)
    return Send(mailing.end_at)
