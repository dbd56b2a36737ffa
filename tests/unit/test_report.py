"""The daily report's pure parts: which day is due, and what the text and HTML say."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from herald.config import load_config
from herald.domain.models import Mailing
from herald.report.content import build_report, preview
from herald.report.daily import due_day

MOSCOW = ZoneInfo("Europe/Moscow")


def email(**changes):
    return load_config(env={}).replace(email=changes).email


def test_yesterdays_report_is_due_once_the_send_time_has_passed_in_the_report_time_zone():
    config = email(send_at="08:00", timezone="Europe/Moscow")  # UTC+3
    assert due_day(datetime(2026, 6, 1, 4, 59, tzinfo=UTC), config) is None
    assert due_day(datetime(2026, 6, 1, 5, 0, tzinfo=UTC), config) == date(2026, 5, 31)
    assert due_day(datetime(2026, 6, 1, 22, 0, tzinfo=UTC), config) is None  # 01:00 on the 2nd in Moscow
    assert due_day(datetime(2026, 6, 2, 5, 0, tzinfo=UTC), config) == date(2026, 6, 1)


def test_a_preview_is_one_line_cut_with_an_ellipsis():
    assert preview("Hello,\n  world") == "Hello, world"
    long = preview("x" * 100)
    assert len(long) == 60 and long.endswith("…")


def test_the_html_escapes_what_operators_typed():
    mailing = Mailing(
        1, "<b>Sale</b> & more", datetime(2026, 5, 31, 6, tzinfo=UTC), datetime(2026, 5, 31, 18, tzinfo=UTC)
    )
    report = build_report(date(2026, 5, 31), MOSCOW, [(mailing, {"sent": 2})])
    assert "&lt;b&gt;Sale&lt;/b&gt; &amp; more" in report.html and "<b>Sale" not in report.html
    assert "2026-05-31 09:00 – 2026-05-31 21:00" in report.text  # shown in the report's time zone
    assert report.subject == "Herald daily report 2026-05-31: 1 mailings, 2 sent, 0 failed"


def test_a_day_without_mailings_says_so():
    report = build_report(date(2026, 5, 31), MOSCOW, [])
    assert "No mailing ran that day." in report.text and "0 messages" in report.text
