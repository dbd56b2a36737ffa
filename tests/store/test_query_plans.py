"""Every query the store sends is served by an index, on the embedded FerretDB and on MongoDB
($HERALD_MONGO_URL): the commands are recorded as the store sends them (PyMongo's command monitoring), then
each one is explained by the server."""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from herald.domain.models import ClientFilter, MessageStatus
from herald.store import Store
from herald.store.db import ensure_indexes
from herald.store.messages import Settle
from tests.helpers import T0, CommandRecorder

QUERIES = {"find", "aggregate", "count", "update", "delete", "findAndModify"}
ON_MONGODB = bool(os.environ.get("HERALD_MONGO_URL"))


@pytest.fixture
async def recorded(db_url: str) -> AsyncIterator[tuple[Store, CommandRecorder]]:
    recorder = CommandRecorder(QUERIES)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(db_url, tz_aware=True, event_listeners=[recorder])
    db = client.get_default_database()
    await ensure_indexes(db)
    yield Store.over(db), recorder
    await client.close()


async def exercise(store: Store) -> None:
    """What the API, the planner, the dispatcher and the reports ask of the store."""
    fields = {"operator_code": "900", "tag": "vip", "timezone": "UTC"}
    clients = [await store.clients.create({"phone": f"7900000000{i}", **fields}, T0) for i in range(3)]
    await store.clients.update(clients[0].id, {"tag": "other"}, T0)
    await store.clients.get(clients[1].id)
    await store.clients.page(after=clients[0].id, limit=10, tag="vip", operator_code="900")
    await store.clients.by_ids([c.id for c in clients])
    vip = ClientFilter(("900",), ("vip",))
    await store.clients.audience_batch(vip, after=0, limit=10)
    await store.clients.audience_by_timezone(vip)
    mailing = await store.mailings.create(
        {"text": "Hi", "start_at": T0, "end_at": T0 + timedelta(hours=1), "filter": vip, "send_window": None}, T0
    )
    await store.mailings.get(mailing.id)
    await store.mailings.page(after=None, limit=10)
    await store.mailings.running(T0)
    await store.mailings.active_between(T0, T0 + timedelta(days=1))
    claimed = await store.mailings.claim_planning("p", T0, 60)
    assert claimed is not None
    await store.mailings.save_plan_progress(mailing.id, "p", clients[-1].id, T0, 60)
    await store.mailings.finish_planning(mailing.id, "p", T0)
    await store.messages.insert_planned(mailing.id, [(c.id, T0) for c in clients], T0)
    claim = await store.messages.claim(2, T0, 60)
    assert claim is not None
    settle = Settle(claim.token)
    await store.messages.settle([settle.sent(claim.messages[0].id), settle.retry(claim.messages[1].id, T0, "x")], T0)
    await store.messages.release({claim.token: [m.id for m in claim.messages]}, T0)
    await store.messages.backlog(T0)
    await store.messages.pending_batch(mailing.id, after=0, limit=10)
    for query in (
        {"mailing_id": mailing.id},
        {"mailing_id": mailing.id, "status": "sent"},
        {"client_id": clients[0].id},
        {"status": "failed"},
        {"after": 5},
    ):
        await store.messages.page(limit=10, **query)
    await store.messages.cancel_pending(ids=[claim.messages[1].id])
    await store.messages.cancel_pending(client_id=clients[2].id)
    await store.messages.cancel_pending(mailing_id=mailing.id)
    await store.messages.expire_pending(mailing.id)
    await store.messages.reopen_expired(mailing.id, T0)
    await store.stats.by_mailing([mailing.id])
    await store.stats.overall()
    await store.stats.sent_per_interval(T0, timedelta(hours=1), 2)
    await store.mailings.ended_unclosed(T0 + timedelta(hours=2))
    await store.mailings.mark_closed(mailing.id, T0 + timedelta(hours=2))
    await store.mailings.ends_by(mailing.id, T0 + timedelta(hours=2))
    await store.mailings.delete(mailing.id, T0)
    await store.clients.delete(clients[2].id)
    key = await store.reports.claim(T0.date(), "r", T0, 60)
    assert key is not None
    await store.reports.mark_sent(key, T0)
    await store.reports.sent_at(T0.date())
    await store.reports.last_sent()
    assert await store.idempotency.take("POST /api/v1/clients\n-\nk", "f", T0) is None
    held = await store.idempotency.take("POST /api/v1/clients\n-\nk", "f", T0)
    assert held is not None and await store.idempotency.take_over("POST /api/v1/clients\n-\nk", held, "g", T0)
    await store.idempotency.answer("POST /api/v1/clients\n-\nk", T0, 201, "application/json", "{}")
    await store.idempotency.release("POST /api/v1/clients\n-\nk", T0)
    await store.idempotency.purge(T0)
    assert (await store.messages.page(limit=1, client_id=clients[0].id))[0].status != MessageStatus.SENDING


def explanations(command: dict[str, Any]) -> list[dict[str, Any]]:
    """The explain commands of a recorded command: one per statement of an update or a delete."""
    name = next(iter(command))
    body = {
        key: value
        for key, value in command.items()
        if not key.startswith("$") and key not in {"lsid", "txnNumber", "autocommit", "startTransaction"}
    }
    if name in {"update", "delete"}:
        statements = body.pop("updates" if name == "update" else "deletes")
        if not ON_MONGODB:  # FerretDB explains find, count and aggregate: a statement's filter is its query
            return [{"find": command[name], "filter": s["q"]} for s in statements]
        return [{**body, ("updates" if name == "update" else "deletes"): [s]} for s in statements]
    if not ON_MONGODB and name == "findAndModify":
        return [{"find": command[name], "filter": command.get("query", {}), "sort": command.get("sort", {})}]
    if not ON_MONGODB and name == "count":
        return [{"find": command[name], "filter": command.get("query", {})}]
    return [body]


def winning_plans(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [node["winningPlan"]] * ("winningPlan" in node) + [
            plan for value in node.values() for plan in winning_plans(value)
        ]
    if isinstance(node, list):
        return [plan for value in node for plan in winning_plans(value)]
    return []


def full_scan(result: dict[str, Any]) -> str | None:
    """What reads a whole collection, if anything: MongoDB's COLLSCAN, or SQLite's SCAN of a table."""
    if ON_MONGODB:
        plans = json.dumps(winning_plans(result), default=str)
        return "COLLSCAN" if "COLLSCAN" in plans else None
    for line in result["queryPlanner"]["Plan"]:
        if re.search(r"detail=SCAN \S+$", line):
            return line
    return None


async def test_every_query_is_served_by_an_index(recorded: tuple[Store, CommandRecorder]) -> None:
    store, recorder = recorded
    await exercise(store)
    db = store.messages._col.database
    scans = []
    for command in recorder.commands:
        for explain in explanations(command):
            result = await db.command("explain", explain)
            if (scan := full_scan(result)) is not None:
                scans.append((explain, scan))
    assert len(recorder.commands) > 40
    assert scans == []
