"""Which clients a mailing is for."""

from __future__ import annotations

from typing import Any

from herald.domain.models import Client, ClientFilter


def matches(client_filter: ClientFilter, client: Client) -> bool:
    codes_match = not client_filter.operator_codes or client.operator_code in client_filter.operator_codes
    return codes_match and (not client_filter.tags or client.tag in client_filter.tags)


def to_query(client_filter: ClientFilter) -> dict[str, Any]:
    """The MongoDB query over the clients collection that selects exactly the clients `matches` accepts."""
    query: dict[str, Any] = {}
    if client_filter.operator_codes:
        query["operator_code"] = {"$in": list(client_filter.operator_codes)}
    if client_filter.tags:
        query["tag"] = {"$in": list(client_filter.tags)}
    return query
