"""What every admin page needs: the operator's timezone, progress of a mailing, chart geometry, template context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web

from herald.admin.forms import operator_zone
from herald.admin.session import session_key
from herald.app_keys import config_key
from herald.domain.models import MessageStatus

TZ_COOKIE = "herald_tz"  # set by admin.js from the browser's own timezone
UNFINISHED = (MessageStatus.PENDING, MessageStatus.SENDING)


def zone(request: web.Request) -> ZoneInfo:
    return operator_zone(request.cookies.get(TZ_COOKIE))


@dataclass(frozen=True)
class Progress:
    done: int
    total: int

    @classmethod
    def of(cls, by_status: dict[str, int]) -> Progress:
        total = sum(by_status.values())
        return cls(total - sum(by_status.get(status, 0) for status in UNFINISHED), total)

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total if self.total else 0


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


def column_chart(points: Sequence[tuple[str, int]], width: float = 720, height: float = 180) -> list[Bar]:
    """Columns scaled to the largest value, in a width x height box (SVG user units)."""
    top = max((value for _, value in points), default=0) or 1
    slot = width / max(len(points), 1)
    return [
        Bar(
            label,
            value,
            x=i * slot + slot * 0.1,
            y=height - value / top * height,
            width=slot * 0.8,
            height=value / top * height,
        )
        for i, (label, value) in enumerate(points)
    ]


def render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    """A page, with what the layout needs: who is signed in, the CSRF token for forms, the operator's zone.

    Not an aiohttp-jinja2 context processor: its middleware keeps state under a string request key.
    """
    return aiohttp_jinja2.render_template(template, request, {**_layout(request), **context}, status=status)


def _layout(request: web.Request) -> dict[str, Any]:
    session = request.get(session_key)
    return {
        "request": request,
        "principal": session.principal if session else None,
        "csrf": session.csrf if session else "",
        "zone": zone(request),
        "login_enabled": request.config_dict[config_key].auth.admin_ui_login,
        "path": request.path,
    }


@jinja2.pass_context
def localtime(context: jinja2.runtime.Context, when: datetime | None) -> str:
    """A stored UTC time in the operator's zone."""
    if when is None:
        return "—"
    return when.astimezone(context["zone"]).strftime("%Y-%m-%d %H:%M")
