"""Which clients a mailing is for."""

from __future__ import annotations

from typing import Any

from herald.domain.models import Client, ClientFilter


def matches(client_filter: ClientFilter, client: Client) -> bool:
    if client_filter.operator_codes and client.operator_code not in client_filter.operator_codes:
        return False
    if client_filter.tags and client.tag not in client_filter.tags:
        return False
    return True


def to_query(client_filter: ClientFilter) -> dict[str, Any]:
    """The MongoDB query over the clients collection that selects exactly the clients `matches` accepts."""
    query: dict[str, Any] = {}
    if client_filter.operator_codes:
        query["operator_code"] = {"$in": list(client_filter.operator_codes)}
    if client_filter.tags:
        query["tag"] = {"$in": list(client_filter.tags)}
    return query
