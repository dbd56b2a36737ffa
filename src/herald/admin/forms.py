"""HTML forms in, API request bodies out: the API's own schemas validate them, so the UI shows the API's errors.

Form fields are named after the body's fields with dots for nesting (`filter.tags`, `send_window.start`), so an
error the schema reports at a path lands next to the input of the same name.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import Schema, ValidationError

from herald.domain.models import Client, Mailing
from herald.errors import HeraldError

Errors = dict[str, list[str]]
FORM_ERROR = "_form"  # errors about the form as a whole


def parse(schema: Schema, body: Mapping[str, Any]) -> tuple[dict[str, Any] | None, Errors]:
    """The schema's loaded data, or None and the errors by dotted field name."""
    try:
        return schema.load(body), {}
    except ValidationError as exc:
        return None, flatten(exc.messages)


def flatten(messages: Any, path: str = "") -> Errors:
    """marshmallow's nested messages as {"filter.tags": [...]}; list items' errors join their list's field."""
    if isinstance(messages, list):
        return {path or FORM_ERROR: [str(m) for m in messages]}
    out: Errors = {}
    for key, value in messages.items():
        name = path if isinstance(key, int) else (f"{path}.{key}" if path else str(key))
        if key == "_schema":
            name = path or FORM_ERROR
        for field, texts in flatten(value, name).items():
            out.setdefault(field, []).extend(texts)
    return out


def from_error(exc: HeraldError) -> Errors:
    """A service error (a taken phone, end before start) as form errors."""
    return {**{name: list(texts) for name, texts in exc.fields.items()}, FORM_ERROR: [exc.detail]}


def operator_zone(name: str | None) -> ZoneInfo:
    """The operator's timezone as the browser reported it; UTC when unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def words(text: str) -> list[str]:
    return [word for word in re.split(r"[\s,]+", text) if word]


def _instant(local: str, zone: ZoneInfo) -> str:
    """A datetime-local input (wall time of the operator) as ISO 8601 with an offset; anything else as typed, so
    that the schema reports it."""
    try:
        return datetime.fromisoformat(local).replace(tzinfo=zone).isoformat()
    except ValueError:
        return local


def mailing_body(form: Mapping[str, str], zone: ZoneInfo) -> dict[str, Any]:
    window = (form.get("send_window.start", ""), form.get("send_window.end", ""))
    return {
        "text": form.get("text", ""),
        "start_at": _instant(form.get("start_at", ""), zone),
        "end_at": _instant(form.get("end_at", ""), zone),
        "filter": {
            "operator_codes": words(form.get("filter.operator_codes", "")),
            "tags": words(form.get("filter.tags", "")),
        },
        "send_window": {"start": window[0], "end": window[1]} if any(window) else None,
    }


def mailing_values(mailing: Mailing, zone: ZoneInfo) -> dict[str, str]:
    """A stored mailing as the form's field values, times in the operator's zone."""
    window = mailing.send_window
    return {
        "text": mailing.text,
        "start_at": local_input(mailing.start_at, zone),
        "end_at": local_input(mailing.end_at, zone),
        "filter.operator_codes": " ".join(mailing.filter.operator_codes),
        "filter.tags": " ".join(mailing.filter.tags),
        "send_window.start": window.start.strftime("%H:%M") if window else "",
        "send_window.end": window.end.strftime("%H:%M") if window else "",
    }


def local_input(when: datetime, zone: ZoneInfo) -> str:
    return when.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def client_body(form: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "phone": form.get("phone", "").strip(),
        "timezone": form.get("timezone", "").strip(),
        "tag": form.get("tag", "").strip() or None,
    }
    if code := form.get("operator_code", "").strip():
        body["operator_code"] = code
    return body


def client_values(client: Client) -> dict[str, str]:
    return {
        "phone": client.phone,
        "operator_code": client.operator_code,
        "tag": client.tag or "",
        "timezone": client.timezone,
    }
