"""The report itself: a pure function from one day's mailings and their counts to a subject, text and HTML."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from herald.domain.models import Mailing, MessageStatus

STATUSES = [status.value for status in MessageStatus]
PREVIEW_CHARS = 60
CELL = "border:1px solid #ccc;padding:4px 8px"


@dataclass(frozen=True)
class Report:
    day: date
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class _Row:
    id: str
    preview: str
    window: str
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def preview(text: str) -> str:
    """The text on one line, cut to PREVIEW_CHARS."""
    line = " ".join(text.split())
    return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1] + "…"


def _window(mailing: Mailing, zone: ZoneInfo) -> str:
    def local(when: datetime) -> str:
        return when.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    window = f"{local(mailing.start_at)} – {local(mailing.end_at)}"
    if mailing.send_window is not None:
        start, end = (t.strftime("%H:%M") for t in (mailing.send_window.start, mailing.send_window.end))
        window += f", sending {start}–{end} client time"
    return window


def build_report(day: date, zone: ZoneInfo, mailings: Sequence[tuple[Mailing, Mapping[str, int]]]) -> Report:
    """The report of `day` (a calendar day in `zone`): each mailing that ran that day with its counts by status."""
    rows = [_Row(str(m.id), preview(m.text), _window(m, zone), counts) for m, counts in mailings]
    totals = _Row("All", "", "", {status: sum(row.counts.get(status, 0) for row in rows) for status in STATUSES})
    title = f"Herald daily report for {day.isoformat()} ({zone.key})"
    summary = f"{len(rows)} mailing{'' if len(rows) == 1 else 's'}, {totals.total} messages: " + ", ".join(
        f"{totals.counts[status]} {status}" for status in STATUSES
    )
    subject = (
        f"Herald daily report {day.isoformat()}: {len(rows)} mailings, "
        f"{totals.counts['sent']} sent, {totals.counts['failed']} failed"
    )
    return Report(day, subject, _text(title, summary, rows), _html(title, summary, rows, totals))


def _text(title: str, summary: str, rows: Sequence[_Row]) -> str:
    lines = [title, "", summary, ""]
    for row in rows:
        lines += [
            f"Mailing {row.id}: {row.preview}",
            f"  {row.window}",
            f"  total {row.total}: " + ", ".join(f"{row.counts.get(status, 0)} {status}" for status in STATUSES),
            "",
        ]
    if not rows:
        lines.append("No mailing ran that day.")
    return "\n".join(lines).rstrip() + "\n"


def _html(title: str, summary: str, rows: Sequence[_Row], totals: _Row) -> str:
    """One table with inline styles: mail clients drop style sheets and never fetch external assets."""
    head = "".join(
        f'<th style="{CELL}">{html.escape(name)}</th>' for name in ["Mailing", "Text", "Window", "Total", *STATUSES]
    )

    def tr(row: _Row, bold: bool = False) -> str:
        cells = [row.id, row.preview, row.window, str(row.total), *(str(row.counts.get(s, 0)) for s in STATUSES)]
        style = CELL + (";font-weight:bold" if bold else "")
        return "<tr>" + "".join(f'<td style="{style}">{html.escape(cell)}</td>' for cell in cells) + "</tr>"

    body = "".join(tr(row) for row in rows) + tr(totals, bold=True)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>' + html.escape(title) + "</title></head>"
        '<body style="font-family:sans-serif">'
        f"<h2>{html.escape(title)}</h2><p>{html.escape(summary)}</p>"
        f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        "</body></html>\n"
    )
