"""Assignment item 12: the JSON logs give, for a mailing, a message or a client id, every line of its story (the
API's requests about it and what Herald did with it, the external API's answers included) and none of another's,
with the filter a person would use: `jq 'select(.mailing_id == N)'`."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from herald.logs import ContextFilter, JsonFormatter
from herald.store.messages import message_id
from tests.helpers import T0, add_clients, add_mailing, wait_counts


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The root logger's JSON lines, as `herald serve` writes them with log.format json."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def select(log: io.StringIO, **ids: int) -> list[dict[str, Any]]:
    """jq 'select(.name == value)' over every line."""
    entries = [json.loads(line) for line in log.getvalue().splitlines()]
    return [entry for entry in entries if all(entry.get(name) == value for name, value in ids.items())]


def requests(entries: list[dict[str, Any]]) -> set[tuple[str, str, int]]:
    return {(e["method"], e["path"], e["status"]) for e in entries if e["msg"] == "request"}


def said(entries: list[dict[str, Any]]) -> list[str]:
    return [e["msg"] if "outcome" not in e else f"{e['msg']}: {e['outcome']}" for e in entries if e["msg"] != "request"]


async def test_each_id_finds_its_whole_story_and_nothing_else(api, store, probe, clock, json_log) -> None:
    ada, bob = await add_clients(api, 2, tag="vip")
    start = (T0 + timedelta(minutes=1)).isoformat()
    mailing = await add_mailing(api, start_at=start, filter={"tags": ["vip"]})
    other = await add_mailing(api, start_at=start, filter={"tags": ["nobody"]})
    m, a, b = mailing["id"], ada["id"], bob["id"]
    ada_message, bob_message = message_id(m, a), message_id(m, b)
    # The API answers Ada's message with a 500 once: one retry.
    probe.state.faults.messages[str(ada_message)] = [{"fault": "500", "count": 1}]

    assert (await api.patch(f"/api/v1/clients/{a}", json={"operator_code": "901"})).status == 200
    assert (await api.patch(f"/api/v1/mailings/{m}", json={"text": "Hello again"})).status == 200
    assert (await api.get(f"/api/v1/mailings/{other['id']}")).status == 200
    clock.advance(60)
    await wait_counts(store, m, {"sent": 1, "pending": 1})
    clock.advance(2)  # past the retry's backoff
    await wait_counts(store, m, {"sent": 2})
    assert (await api.get(f"/api/v1/mailings/{m}/stats")).status == 200
    assert (await api.get(f"/api/v1/messages?mailing_id={m}&client_id={a}")).status == 200
    assert (await api.get(f"/api/v1/clients/{b}")).status == 200
    assert (await api.delete(f"/api/v1/clients/{a}")).status == 204

    of_mailing = select(json_log, mailing_id=m)
    assert requests(of_mailing) == {
        ("POST", "/api/v1/mailings", 201),
        ("PATCH", f"/api/v1/mailings/{m}", 200),
        ("GET", f"/api/v1/mailings/{m}/stats", 200),
        ("GET", "/api/v1/messages", 200),
    }
    assert {"mailing created", "mailing updated", "planning started", "planning finished"} <= set(said(of_mailing))
    answers = [(e["message_id"], e["outcome"]) for e in of_mailing if e["msg"] == "external API answered"]
    assert sorted(answers) == sorted([(ada_message, "5xx"), (ada_message, "ok"), (bob_message, "ok")])

    of_message = select(json_log, message_id=ada_message)
    # The 500 also halved the number of requests in flight, which is logged in the message's context.
    answered = ["external API answered: 5xx", "concurrency limit lowered", "external API answered: ok"]
    assert said(of_message) == answered
    assert all(e["mailing_id"] == m and e["client_id"] == a for e in of_message)

    of_ada = select(json_log, client_id=a)
    assert requests(of_ada) == {
        ("POST", "/api/v1/clients", 201),
        ("PATCH", f"/api/v1/clients/{a}", 200),
        ("GET", "/api/v1/messages", 200),
        ("DELETE", f"/api/v1/clients/{a}", 204),
    }
    assert said(of_ada) == ["client created", "client updated", *answered, "client deleted"]

    # Nothing about another mailing or client found its way into these stories.
    assert select(json_log, mailing_id=other["id"]) and select(json_log, client_id=b)
    assert not any(e.get("client_id") == b or e.get("message_id") == bob_message for e in of_ada + of_message)
    assert not any(e.get("path") == f"/api/v1/mailings/{other['id']}" for e in of_mailing + of_ada)
