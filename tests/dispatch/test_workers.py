"""Workers come and go: restarts, several at once, graceful shutdown, logs that tell each message's story."""

import json
import logging

from herald.app import Role
from herald.logs import ContextFilter, JsonFormatter
from herald.store.messages import message_id
from tests.helpers import add_clients, add_mailing, counts, eventually, insert_clients, wait_counts

WORKER = frozenset({Role.PLANNER, Role.DISPATCHER})
API = frozenset({Role.API})


async def test_a_restart_in_the_middle_of_a_mailing_delivers_everything_once(start_herald, db, store, probe):
    await insert_clients(db, 300)
    probe.state.faults.update({"latency_ms": 20})
    api = await start_herald(API)
    first = await start_herald(WORKER, dispatch={"concurrency": 10, "batch_size": 20, "grace_s": 0.0})
    mailing = await add_mailing(api)
    await eventually(lambda: _accepted_at_least(probe, 50))
    await first.close()  # no grace: whatever is in flight is cut off and released
    partial = await counts(store, mailing["id"])
    assert partial.get("sent", 0) < 300 and "sending" not in partial
    await start_herald(WORKER)
    await wait_counts(store, mailing["id"], {"sent": 300}, timeout=30)
    duplicates = {msg_id: n for msg_id, n in probe.accepted().items() if n > 1}
    assert len(probe.accepted()) == 300
    # Only requests cut off mid-flight can arrive twice (at most `concurrency` of them).
    assert len(duplicates) <= 10


async def test_several_workers_share_a_mailing_without_sending_twice(start_herald, db, store, probe):
    await insert_clients(db, 400)
    api = await start_herald(API)
    for _ in range(3):
        await start_herald(WORKER, dispatch={"concurrency": 20, "batch_size": 25})
    mailing = await add_mailing(api)
    await wait_counts(store, mailing["id"], {"sent": 400}, timeout=30)
    assert len(probe.accepted()) == 400 and set(probe.accepted().values()) == {1}


async def test_shutdown_lets_in_flight_sends_finish_and_leaves_nothing_sending(start_herald, db, store, probe):
    await insert_clients(db, 20)
    probe.state.faults.update({"latency_ms": 300})
    herald = await start_herald(dispatch={"concurrency": 5, "batch_size": 10, "grace_s": 5.0})
    mailing = await add_mailing(herald)
    await eventually(lambda: _in_flight(probe))
    await herald.close()
    after = await counts(store, mailing["id"])
    assert "sending" not in after and after.get("sent", 0) >= 5  # the in-flight five finished
    assert after.get("sent", 0) == len(probe.accepted())  # everything accepted is recorded as sent


async def test_every_log_line_about_a_message_carries_its_ids(api, store, probe, caplog):
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.INFO):
        (client,) = await add_clients(api, 1)
        mailing = await add_mailing(api)
        await wait_counts(store, mailing["id"], {"sent": 1})
    msg_id = message_id(mailing["id"], client["id"])
    lines = [json.loads(JsonFormatter().format(record)) for record in caplog.records]
    about_message = [line for line in lines if line.get("message_id") == msg_id]
    assert any(line["msg"] == "external API answered" and line["outcome"] == "ok" for line in about_message)
    assert all(line["mailing_id"] == mailing["id"] and line["client_id"] == client["id"] for line in about_message)
    created = [line for line in lines if line["msg"] == "mailing created"]
    assert created and created[0]["mailing_id"] == mailing["id"] and created[0]["request_id"]
    client_lines = [line for line in lines if line.get("client_id") == client["id"] and line["msg"] == "client created"]
    assert client_lines and client_lines[0]["request_id"]
    token = probe.state.secret
    assert all(token not in json.dumps(line) for line in lines)
    assert all("Bearer" not in json.dumps(line) for line in lines)


async def _accepted_at_least(probe, n: int) -> bool:
    return len(probe.accepted()) >= n


async def _in_flight(probe) -> bool:
    return probe.state.ledger.requests >= 5 or len(probe.accepted()) >= 1
