"""Request and response shapes: validation, and the OpenAPI description Swagger UI shows."""

from __future__ import annotations

import functools
import importlib.resources
from datetime import UTC, time
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from herald.domain.models import ClientFilter, MessageStatus, SendWindow
from herald.store.messages import CLIENT_ID_BITS, MAILING_ID_BITS

MAX_ID = 2**63 - 1


class Pattern(validate.Regexp):
    """A pattern the whole value matches, as JSON Schema reads `^...$`: Python's `$` also admits a trailing newline
    (so the value must match in full), and its `\\d` any script's digits (so the patterns say [0-9])."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


PHONE = Pattern(r"^7[0-9]{10}$", error="Must be 11 digits starting with 7: 7XXXXXXXXXX.")
OPERATOR_CODE = Pattern(r"^[0-9]{3}$", error="Must be 3 digits.")
TIME_OF_DAY = Pattern(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", error="Must be a time of day as HH:MM.")
TAG = validate.Length(min=1, max=64)
# The IANA names of the tzdata package Herald depends on: the same set on every machine, whatever its own zoneinfo
# holds, so that the documented enum is the validated one.
TIMEZONES = tuple(sorted(importlib.resources.files("tzdata").joinpath("zones").read_text().split()))
TIMEZONE = validate.OneOf(TIMEZONES, error="Not a known IANA timezone, e.g. Europe/Moscow.")


class Strict(Schema):
    class Meta:
        unknown = RAISE


class HHMM(fields.String):
    """Time of day as "HH:MM"."""

    def __init__(self, *, metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        # The pattern is checked while deserializing (validators would see a time); the metadata documents it.
        super().__init__(metadata={"pattern": TIME_OF_DAY.regex.pattern, **(metadata or {})}, **kwargs)

    def _serialize(self, value: time | None, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else value.strftime("%H:%M")

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> time:
        text = TIME_OF_DAY(super()._deserialize(value, attr, data, **kwargs))
        return time(int(text[:2]), int(text[3:]))


def _utc(value: Any) -> Any:
    return value.astimezone(UTC)


class Instant(fields.AwareDateTime):
    """ISO 8601 with an offset; naive times are rejected; stored and returned in UTC."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        return _utc(super()._deserialize(value, attr, data, **kwargs))


# Clients


class ClientCreate(Strict):
    phone = fields.String(required=True, validate=PHONE, metadata={"example": "79001234567"})
    operator_code = fields.String(
        validate=OPERATOR_CODE,
        metadata={"description": "Mobile operator code; defaults to the phone's digits 2-4.", "example": "900"},
    )
    tag = fields.String(allow_none=True, validate=TAG, metadata={"example": "vip"})
    timezone = fields.String(required=True, validate=TIMEZONE, metadata={"example": "Europe/Moscow"})

    @post_load
    def default_operator_code(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data.setdefault("operator_code", data["phone"][1:4])
        data.setdefault("tag", None)
        return data


class ClientPatch(Strict):
    phone = fields.String(validate=PHONE)
    operator_code = fields.String(validate=OPERATOR_CODE)
    tag = fields.String(allow_none=True, validate=TAG)
    timezone = fields.String(validate=TIMEZONE)

    @validates_schema
    def not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one field to change.")


class ClientOut(Schema):
    id = fields.Integer()
    phone = fields.String()
    operator_code = fields.String()
    tag = fields.String(allow_none=True)
    timezone = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ClientQuery(Strict):
    tag = fields.String(validate=TAG)
    operator_code = fields.String(validate=OPERATOR_CODE)


# Pagination: by key, so that page 1000 costs what page 1 does.


class Page(Strict):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 1000))
    after = fields.Integer(
        validate=validate.Range(0, MAX_ID), metadata={"description": "The `next_after` of the previous page."}
    )


class ClientPageQuery(Page, ClientQuery):
    pass


@functools.cache
def page_of(item: type[Schema]) -> type[Schema]:
    """The schema of one page of `item`s (one class per item type, so OpenAPI names it once)."""
    name = f"{item.__name__.removesuffix('Out')}Page"
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item)),
            "next_after": fields.Integer(
                allow_none=True, metadata={"description": "Pass as `after` for the next page; null on the last page."}
            ),
        },
        name=name,
    )


# Mailings


class FilterIn(Strict):
    operator_codes = fields.List(
        fields.String(validate=OPERATOR_CODE),
        load_default=list,
        validate=validate.Length(max=1000),
        metadata={"example": ["900", "901"]},
    )
    tags = fields.List(
        fields.String(validate=TAG),
        load_default=list,
        validate=validate.Length(max=1000),
        metadata={"example": ["vip"]},
    )

    @post_load
    def to_filter(self, data: dict[str, Any], **kwargs: Any) -> ClientFilter:
        return ClientFilter(tuple(sorted(set(data["operator_codes"]))), tuple(sorted(set(data["tags"]))))


class WindowIn(Strict):
    start = HHMM(required=True, metadata={"example": "09:00"})
    end = HHMM(required=True, metadata={"example": "21:00"})

    @validates_schema
    def not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("start") == data.get("end"):
            raise ValidationError("start and end must differ; omit the window to send at any hour.", "end")

    @post_load
    def to_window(self, data: dict[str, Any], **kwargs: Any) -> SendWindow:
        return SendWindow(data["start"], data["end"])


class MailingPatch(Strict):
    text = fields.String(validate=validate.Length(1, 1000), metadata={"example": "Spring sale: -20% today"})
    start_at = Instant(metadata={"example": "2026-12-01T09:00:00+03:00"})
    end_at = Instant(metadata={"description": "After `start_at`.", "example": "2026-12-01T21:00:00+03:00"})
    filter = fields.Nested(
        FilterIn, metadata={"description": "AND across fields, OR within one; an empty filter selects every client."}
    )
    send_window = fields.Nested(
        WindowIn,
        allow_none=True,
        metadata={
            "description": "Send only while the client's local time is in [start, end); start and end differ; may "
            "cross midnight."
        },
    )

    @validates_schema
    def coherent(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one field to change.")
        if "start_at" in data and "end_at" in data and data["end_at"] <= data["start_at"]:
            raise ValidationError("Must be after start_at.", "end_at")


class MailingCreate(MailingPatch):
    text = fields.String(
        required=True, validate=validate.Length(1, 1000), metadata={"example": "Spring sale: -20% today"}
    )
    start_at = Instant(required=True, metadata={"example": "2026-12-01T09:00:00+03:00"})
    end_at = Instant(
        required=True, metadata={"description": "After `start_at`.", "example": "2026-12-01T21:00:00+03:00"}
    )
    filter = fields.Nested(
        FilterIn,
        load_default=ClientFilter,
        metadata={"description": "AND across fields, OR within one; an empty filter selects every client."},
    )
    send_window = fields.Nested(
        WindowIn,
        allow_none=True,
        load_default=None,
        metadata={
            "description": "Send only while the client's local time is in [start, end); start and end differ; may "
            "cross midnight."
        },
    )


class FilterOut(Schema):
    operator_codes = fields.List(fields.String())
    tags = fields.List(fields.String())


class WindowOut(Schema):
    start = HHMM()
    end = HHMM()


class MailingOut(Schema):
    id = fields.Integer()
    text = fields.String()
    start_at = fields.DateTime()
    end_at = fields.DateTime()
    filter = fields.Nested(FilterOut)
    send_window = fields.Nested(WindowOut, allow_none=True)
    state = fields.String(
        metadata={
            "enum": ["scheduled", "running", "paused", "ended"],
            "description": "Where now is relative to start_at and end_at; paused while "
            "paused_at is set and the end has not come.",
        }
    )
    paused_at = fields.DateTime(allow_none=True, metadata={"description": "When it was paused; null while it is not."})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class TestSendIn(Strict):
    phone = fields.String(required=True, validate=PHONE, metadata={"example": "79001234567"})


class TestSendOut(Schema):
    sent = fields.Boolean(metadata={"description": "Whether the external API accepted it.", "example": True})
    outcome = fields.String(
        metadata={
            "enum": ["ok", "timeout", "connection", "5xx", "429", "malformed", "auth", "4xx"],
            "description": "How the external API answered.",
            "example": "ok",
        }
    )
    detail = fields.String(metadata={"description": "The external API's error, if any.", "example": ""})
    msg_id = fields.Integer(
        metadata={"description": "The msgId used: above every message's, never reused.", "example": 4611686018427387905}
    )


class RetriedOut(Schema):
    retried = fields.Integer(metadata={"description": "Failed messages put back to pending.", "example": 3})


# Imports


class ImportQuery(Strict):
    mode = fields.String(
        load_default="insert",
        validate=validate.OneOf(["insert", "upsert"]),
        metadata={"description": "insert: a phone that exists already is skipped; upsert: it is updated."},
    )


class LineErrors(Schema):
    line = fields.Integer(metadata={"example": 7})
    errors = fields.Dict(metadata={"example": {"phone": ["Must be 11 digits starting with 7: 7XXXXXXXXXX."]}})


class ImportOut(Schema):
    id = fields.Integer(metadata={"example": 12})
    status = fields.String(metadata={"enum": ["running", "done", "failed"], "example": "running"})
    mode = fields.String(metadata={"enum": ["insert", "upsert"], "example": "insert"})
    format = fields.String(metadata={"enum": ["text/csv", "application/x-ndjson"], "example": "text/csv"})
    lines = fields.Integer(
        metadata={"description": "Data lines in the file: processed / lines is the progress.", "example": 50000}
    )
    processed = fields.Integer(
        attribute="counts.processed", metadata={"description": "Data lines read so far.", "example": 21000}
    )
    created = fields.Integer(attribute="counts.created", metadata={"example": 20950})
    updated = fields.Integer(attribute="counts.updated", metadata={"example": 0})
    skipped = fields.Integer(
        attribute="counts.skipped",
        metadata={"description": "Lines whose phone exists already (mode insert).", "example": 48},
    )
    failed = fields.Integer(attribute="counts.failed", metadata={"description": "Lines refused.", "example": 2})
    errors = fields.List(
        fields.Nested(LineErrors),
        metadata={"description": "The first 100 lines refused, with the client API's messages."},
    )
    line = fields.Integer(metadata={"description": "The last line read (the CSV header is line 1).", "example": 21001})
    detail = fields.String(allow_none=True, metadata={"description": "Why it failed, if it did.", "example": None})
    created_at = fields.DateTime(metadata={"example": "2026-06-01T12:00:00+00:00"})
    updated_at = fields.DateTime(metadata={"example": "2026-06-01T12:00:02+00:00"})


# Messages and statistics

STATUSES = [status.value for status in MessageStatus]


class MessageOut(Schema):
    id = fields.Integer()
    mailing_id = fields.Integer()
    client_id = fields.Integer()
    status = fields.String(metadata={"enum": STATUSES})
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)


class MessageQuery(Page):
    # A message id holds its mailing's and its client's ids (store.messages.message_id): none exists beyond these.
    mailing_id = fields.Integer(validate=validate.Range(1, 2**MAILING_ID_BITS - 1))
    client_id = fields.Integer(validate=validate.Range(1, 2**CLIENT_ID_BITS - 1))
    status = fields.String(validate=validate.OneOf(STATUSES))


class MessageLogQuery(Page):
    status = fields.String(validate=validate.OneOf(STATUSES))


class Counts(Schema):
    total = fields.Integer()
    by_status = fields.Dict(
        keys=fields.String(metadata={"enum": STATUSES}),
        values=fields.Integer(),
        metadata={"example": dict.fromkeys(STATUSES, 0)},
    )


class MailingWithCounts(MailingOut, Counts):
    pass


class StatsOut(Counts):
    items = fields.List(fields.Nested(MailingWithCounts))
    next_after = fields.Integer(allow_none=True)


class MailingStatsOut(Counts):
    mailing = fields.Nested(MailingOut)
    messages = fields.Nested(page_of(MessageOut))


class Problem(Schema):
    type = fields.String(metadata={"example": "about:blank"})
    title = fields.String(metadata={"example": "Unprocessable Content"})
    status = fields.Integer(metadata={"example": 422})
    detail = fields.String()
    instance = fields.String()
    request_id = fields.String()
    errors = fields.Dict(
        metadata={
            "description": "Field-level messages, nested like the request body.",
            "example": {"phone": ["Must be 11 digits starting with 7: 7XXXXXXXXXX."]},
        }
    )
