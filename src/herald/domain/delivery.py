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


@dataclass(frozen=True)
class Hold:
    """The mailing is paused: the message waits for its resumption (its end is enforced all the same)."""


Decision = Send | Wait | Expire | Hold


def decide(mailing: Mailing, tz: ZoneInfo, now: datetime) -> Decision:
    if now >= mailing.end_at:
        return Expire()
    opening = window_opening(mailing.send_window, tz, max(now, mailing.start_at))
    if opening >= mailing.end_at:
        return Expire()
    if mailing.paused:
        return Hold()
    if opening > now:
        return Wait(opening)
    return Send(mailing.end_at)
