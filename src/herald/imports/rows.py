"""The rows of an import file, each checked by the client API's own schema: the same rules, the same messages.

Both formats are read a line at a time from bytes, so that a line that is not UTF-8, not JSON or has the wrong
number of columns fails alone; client fields never span lines.
"""

from __future__ import annotations

import csv
import enum
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from herald.api.schemas import ClientCreate
from herald.errors import Invalid

COLUMNS = ("phone", "operator_code", "tag", "timezone")
# The CSV header: the client's fields, each once, in any order, after an optional UTF-8 byte order mark. The OpenAPI
# document states this very pattern for the body.
CSV_HEADER = re.compile(
    "^\ufeff?(?:" + "|".join(",".join(order) for order in itertools.permutations(COLUMNS)) + ")(?:\r?\n|$)"
)
# CSV leaves optional fields empty: an empty one means "not given", as a missing key does in JSON.
OPTIONAL = frozenset({"operator_code", "tag"})
_SCHEMA = ClientCreate()


class Format(enum.StrEnum):
    CSV = "text/csv"
    NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Row:
    """One line of data: the client's fields, or why the line was refused."""

    line: int
    fields: dict[str, Any] | None = None
    errors: dict[str, Any] | None = None


def csv_columns(header: bytes) -> list[str]:
    """The columns named by a CSV header line: exactly the client's fields, in any order (CSV_HEADER)."""
    try:
        text = header.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        text = ""
    names = text.removesuffix("\n").removesuffix("\r").split(",") if text.endswith("\n") else text.split(",")
    if sorted(names) != sorted(COLUMNS):
        raise Invalid(
            f"the CSV header must name the columns {','.join(COLUMNS)}, in any order",
            header=[f"Got {','.join(names) or 'nothing'}."],
        )
    return names


def parse(kind: Format, columns: list[str] | None, line: int, raw: bytes) -> Row | None:
    """One line as a row, or None for a blank line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Row(line, errors={"_line": ["Not UTF-8 text."]})
    if not text.strip():
        return None
    data = _csv_fields(text, columns or list(COLUMNS)) if kind is Format.CSV else _json_fields(text)
    if isinstance(data, Row):
        return Row(line, errors=data.errors)
    try:
        return Row(line, fields=_SCHEMA.load(data))
    except ValidationError as exc:
        return Row(line, errors=exc.normalized_messages())


def _csv_fields(text: str, columns: list[str]) -> dict[str, Any] | Row:
    values = next(csv.reader([text.rstrip("\r\n")]), [])
    if len(values) != len(columns):
        return Row(0, errors={"_line": [f"Expected {len(columns)} columns, got {len(values)}."]})
    return {name: value for name, value in zip(columns, values, strict=True) if value or name not in OPTIONAL}


def _json_fields(text: str) -> dict[str, Any] | Row:
    try:
        data = json.loads(text)
    except ValueError:
        return Row(0, errors={"_line": ["Not a JSON object."]})
    if not isinstance(data, dict):
        return Row(0, errors={"_line": ["Not a JSON object."]})
    return data


def csv_line(client: dict[str, Any]) -> str:
    """A client as a line of the import's CSV (what an export writes)."""
    out = _LineWriter()
    csv.writer(out, lineterminator="\n").writerow([client.get(name) or "" for name in COLUMNS])
    return out.value


class _LineWriter:
    value = ""

    def write(self, text: str) -> None:
        self.value += text


def header_line() -> str:
    return ",".join(COLUMNS) + "\n"
