"""Pause and resume: a paused mailing's messages wait (those in flight finish), its end holds all the same."""

from tests.helpers import add_clients, add_mailing, counts, eventually, wait_counts


async def pause(api, mailing_id: int, action: str = "pause") -> dict:
    response = await api.post(f"/api/v1/mailings/{mailing_id}/{action}")
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_paused_mailing_sends_nothing_until_it_resumes(api, store, probe, clock):
    await add_clients(api, 30)
    probe.state.faults.update({"latency_ms": 300})
    mailing = await add_mailing(api)
    await eventually(lambda: _requested(probe, 1))
    paused = await pause(api, mailing["id"])
    assert paused["state"] == "paused" and paused["paused_at"]
    await eventually(lambda: _nothing_in_flight(store, mailing["id"]))
    sent = (await counts(store, mailing["id"])).get("sent", 0)
    assert 0 < sent < 30  # what was in flight finished; the rest waits
    requests = probe.state.ledger.requests
    clock.advance(5)
    await wait_counts(store, mailing["id"], {"sent": sent, "pending": 30 - sent}, timeout=0.5)
    assert probe.state.ledger.requests == requests
    assert (await (await api.get(f"/api/v1/mailings/{mailing['id']}")).json())["state"] == "paused"
    probe.state.faults.update({"latency_ms": 0})
    resumed = await pause(api, mailing["id"], "resume")
    assert resumed["state"] == "running" and resumed["paused_at"] is None
    await wait_counts(store, mailing["id"], {"sent": 30})
    assert set(probe.accepted().values()) == {1}


async def test_a_mailing_paused_before_its_start_is_planned_but_held(api, store, probe, clock):
    await add_clients(api, 5)
    mailing = await add_mailing(api, start_at="2026-06-01T13:00:00Z")
    assert (await pause(api, mailing["id"]))["state"] == "paused"
    clock.advance(3600)
    await wait_counts(store, mailing["id"], {"pending": 5})
    await wait_counts(store, mailing["id"], {"pending": 5}, timeout=0.3)
    assert probe.state.ledger.requests == 0
    await pause(api, mailing["id"], "resume")
    await wait_counts(store, mailing["id"], {"sent": 5})


async def test_the_end_holds_for_a_paused_mailing(api, store, probe, clock):
    await add_clients(api, 4)
    mailing = await add_mailing(api, start_at="2026-06-01T13:00:00Z", end_at="2026-06-01T14:00:00Z")
    await pause(api, mailing["id"])
    clock.advance(3600)
    await wait_counts(store, mailing["id"], {"pending": 4})
    clock.advance(3600)
    await wait_counts(store, mailing["id"], {"expired": 4})
    response = await api.post(f"/api/v1/mailings/{mailing['id']}/pause")
    assert response.status == 409 and response.content_type == "application/problem+json"
    assert (await (await api.get(f"/api/v1/mailings/{mailing['id']}")).json())["state"] == "ended"
    assert probe.state.ledger.requests == 0


async def test_pausing_twice_and_resuming_a_running_mailing_change_nothing(api, store, probe):
    await add_clients(api, 2)
    mailing = await add_mailing(api, start_at="2026-06-01T13:00:00Z")
    first = await pause(api, mailing["id"])
    assert (await pause(api, mailing["id"]))["paused_at"] == first["paused_at"]
    await pause(api, mailing["id"], "resume")
    assert (await pause(api, mailing["id"], "resume"))["state"] == "scheduled"
    assert (await api.post("/api/v1/mailings/999999/pause")).status == 404


async def _requested(probe, n: int) -> bool:
    return probe.state.ledger.requests + probe.state.ledger.in_flight >= n


async def _nothing_in_flight(store, mailing_id: int) -> bool:
    return "sending" not in await counts(store, mailing_id)
