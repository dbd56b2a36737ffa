from datetime import UTC, datetime

from herald.domain.filters import matches, to_query
from herald.domain.models import Client, ClientFilter

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def client(operator_code: str = "900", tag: str | None = "vip") -> Client:
    return Client(1, "79001234567", operator_code, tag, "Europe/Moscow", NOW, NOW)


def test_empty_filter_matches_everyone():
    assert matches(ClientFilter(), client())
    assert matches(ClientFilter(), client(tag=None))
    assert to_query(ClientFilter()) == {}


def test_or_within_a_field():
    only = ClientFilter(operator_codes=("900", "901"))
    assert matches(only, client("900")) and matches(only, client("901"))
    assert not matches(only, client("902"))


def test_and_across_fields():
    both = ClientFilter(operator_codes=("900",), tags=("vip",))
    assert matches(both, client("900", "vip"))
    assert not matches(both, client("900", "regular"))
    assert not matches(both, client("901", "vip"))


def test_a_tag_filter_excludes_clients_without_a_tag():
    assert not matches(ClientFilter(tags=("vip",)), client(tag=None))


def test_query_selects_what_matches_accepts():
    assert to_query(ClientFilter(("900",), ("a", "b"))) == {
        "operator_code": {"$in": ["900"]},
        "tag": {"$in": ["a", "b"]},
    }
