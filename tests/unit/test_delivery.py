from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from herald.domain.delivery import Expire, Send, Wait, decide
from herald.domain.models import Mailing, SendWindow

MOSCOW = ZoneInfo("Europe/Moscow")
START = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)  # 09:00 Moscow
END = START + timedelta(hours=10)


def mailing(window: SendWindow | None = None) -> Mailing:
    return Mailing(1, "hi", START, END, send_window=window)


def test_sends_between_start_and_end_with_the_end_as_deadline():
    assert decide(mailing(), MOSCOW, START + timedelta(hours=1)) == Send(END)


def test_waits_for_the_start():
    assert decide(mailing(), MOSCOW, START - timedelta(minutes=5)) == Wait(START)


def test_expires_at_the_end_exactly():
    assert decide(mailing(), MOSCOW, END) == Expire()


def test_waits_for_the_window():
    evening = SendWindow(time(18), time(20))  # 15:00-17:00 UTC
    assert decide(mailing(evening), MOSCOW, START) == Wait(datetime(2026, 6, 1, 15, 0, tzinfo=UTC))


def test_expires_when_the_window_opens_only_after_the_end():
    late = SendWindow(time(23), time(23, 30))  # 20:00 UTC, after END (16:00 UTC)
    assert decide(mailing(late), MOSCOW, START) == Expire()
