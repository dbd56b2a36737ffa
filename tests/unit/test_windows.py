from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from herald.domain.models import SendWindow
from herald.domain.windows import is_open, window_opening

MOSCOW = ZoneInfo("Europe/Moscow")  # UTC+3, no DST
BERLIN = ZoneInfo("Europe/Berlin")
DAY = SendWindow(time(9), time(18))
NIGHT = SendWindow(time(22), time(6))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_no_window_means_any_time():
    assert window_opening(None, MOSCOW, utc(2026, 6, 1, 2, 0)) == utc(2026, 6, 1, 2, 0)


def test_inside_the_window_sends_now():
    # 12:00 UTC is 15:00 in Moscow
    assert window_opening(DAY, MOSCOW, utc(2026, 6, 1, 12, 0)) == utc(2026, 6, 1, 12, 0)


def test_before_the_window_waits_for_todays_opening():
    # 04:00 UTC is 07:00 in Moscow; the window opens at 09:00 Moscow = 06:00 UTC
    assert window_opening(DAY, MOSCOW, utc(2026, 6, 1, 4, 0)) == utc(2026, 6, 1, 6, 0)


def test_after_the_window_waits_for_tomorrows_opening():
    # 16:00 UTC is 19:00 in Moscow
    assert window_opening(DAY, MOSCOW, utc(2026, 6, 1, 16, 0)) == utc(2026, 6, 2, 6, 0)


def test_end_is_exclusive():
    # 15:00 UTC is exactly 18:00 in Moscow
    assert window_opening(DAY, MOSCOW, utc(2026, 6, 1, 15, 0)) == utc(2026, 6, 2, 6, 0)


def test_window_crossing_midnight():
    assert is_open(NIGHT, time(23, 30)) and is_open(NIGHT, time(5, 59))
    assert not is_open(NIGHT, time(6, 0)) and not is_open(NIGHT, time(12, 0))
    # 10:00 UTC is 13:00 in Moscow: the night window opens at 22:00 Moscow = 19:00 UTC the same day
    assert window_opening(NIGHT, MOSCOW, utc(2026, 6, 1, 10, 0)) == utc(2026, 6, 1, 19, 0)
    # 01:00 UTC is 04:00 in Moscow: inside
    assert window_opening(NIGHT, MOSCOW, utc(2026, 6, 1, 1, 0)) == utc(2026, 6, 1, 1, 0)


def test_the_same_instant_differs_by_client_timezone():
    now = utc(2026, 6, 1, 5, 0)  # 08:00 in Moscow, 14:00 in Tokyo, 01:00 in New York
    assert window_opening(DAY, ZoneInfo("Asia/Tokyo"), now) == now
    assert window_opening(DAY, MOSCOW, now) == utc(2026, 6, 1, 6, 0)
    assert window_opening(DAY, ZoneInfo("America/New_York"), now) == utc(2026, 6, 1, 13, 0)


def test_opening_follows_daylight_saving_time():
    # Berlin moves from UTC+1 to UTC+2 on 2026-03-29. After a closed evening on the 28th (UTC+1), the
    # next 09:00 is on the 29th, already summer time: 07:00 UTC, not 08:00.
    assert window_opening(DAY, BERLIN, utc(2026, 3, 28, 20, 0)) == utc(2026, 3, 29, 7, 0)


def test_opening_inside_a_dst_gap_resolves_after_the_gap():
    # 02:30 does not exist in Berlin on 2026-03-29 (02:00 jumps to 03:00).
    window = SendWindow(time(2, 30), time(4, 0))
    opening = window_opening(window, BERLIN, utc(2026, 3, 28, 23, 0))  # 00:00 local
    local = opening.astimezone(BERLIN)
    assert local.date() == datetime(2026, 3, 29).date() and time(3, 0) <= local.time() < time(4, 0)
