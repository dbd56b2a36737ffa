"""GET /metrics on the API and on a worker, parsed with prometheus-client: the counters follow what happens."""

from datetime import timedelta

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from herald.app import Role
from herald.localdb import free_port
from tests.helpers import T0, add_clients, add_mailing, eventually, wait_counts
from tests.ops.conftest import scrape, scraped, value

WORKER = frozenset({Role.PLANNER, Role.DISPATCHER})


def _expired(samples):
    """Expired by the dispatcher (due after the end) or by the planner when the mailing closed."""
    return sum(
        value(samples, "herald_message_transitions_total", **{"from": source, "to": "expired"})
        for source in ("sending", "pending")
    )


async def test_http_requests_are_counted_by_route_template_never_by_id(api):
    before = await scrape(api)
    for client_id in (101, 202):
        assert (await api.get(f"/api/v1/clients/{client_id}")).status == 404
    assert (await api.get("/no/such/path/303")).status == 404
    assert (await api.get("/api/v1/clients")).status == 200

    samples = await scrape(api)
    route = "/api/v1/clients/{id}"
    assert value(samples, "herald_http_requests_total", method="GET", route=route, status=404) == 2
    assert value(samples, "herald_http_requests_total", method="GET", route="unmatched", status=404) == 1
    assert value(samples, "herald_http_requests_total", method="GET", route="/api/v1/clients", status=200) == 1
    assert value(samples, "herald_http_request_duration_seconds_count", method="GET", route=route) == 2
    assert value(before, "herald_http_requests_total", method="GET", route=route, status=404) == 0
    labels = {v for _, label_set in samples for _, v in label_set}
    assert not {"101", "202", "/api/v1/clients/101", "/no/such/path/303"} & labels


async def test_counters_move_when_messages_are_sent_fail_and_expire(api, store, probe, clock):
    await add_clients(api, 3)
    probe.fail_next("400")
    first = await add_mailing(api)
    await wait_counts(store, first["id"], {"sent": 2, "failed": 1})

    samples = await scrape(api)
    assert value(samples, "herald_message_transitions_total", **{"from": "sending", "to": "sent"}) == 2
    assert value(samples, "herald_message_transitions_total", **{"from": "sending", "to": "failed"}) == 1
    assert value(samples, "herald_external_requests_total", outcome="ok") == 2
    assert value(samples, "herald_external_requests_total", outcome="4xx") == 1
    assert value(samples, "herald_external_request_duration_seconds_count") == 3
    assert value(samples, "herald_planner_messages_created_total") == 3
    assert value(samples, "herald_planner_mailings_planned_total") == 1
    assert _expired(samples) == 0

    # Throttled until after the end: the dispatcher expires all three. Then the end passes and the planner closes
    # the mailing with nothing left to expire (had both expired at once, one message could count twice).
    probe.state.faults.update({"retry_after_s": 600})
    probe.fail_next("429", 3)
    second = await add_mailing(api, end_at="2026-06-01T12:05:00Z")
    await wait_counts(store, second["id"], {"expired": 3})
    assert value(await scrape(api), "herald_external_requests_total", outcome="429") == 3
    clock.set(T0 + timedelta(minutes=10))
    await eventually(lambda: scraped(api, "herald_planner_mailings_closed_total"))

    samples = await scrape(api)
    assert _expired(samples) == 3
    assert value(samples, "herald_planner_mailings_closed_total") == 1  # the second; the first ends at 18:00
    assert value(samples, "herald_message_transitions_total", **{"from": "sending", "to": "sent"}) == 2


async def test_the_backlog_and_its_oldest_age_come_from_the_outbox(start_herald, store):
    api_only = await start_herald(frozenset({Role.API}))
    samples = await scrape(api_only)
    assert value(samples, "herald_outbox_due_messages") == 0
    assert value(samples, "herald_outbox_oldest_due_age_seconds") == 0
    assert value(samples, "herald_database_up") == 1

    mailing = await store.mailings.create({"text": "Hi", "start_at": T0, "end_at": T0 + timedelta(hours=1)}, T0)
    await store.messages.insert_planned(
        mailing.id, [(1, T0 - timedelta(seconds=90)), (2, T0), (3, T0 + timedelta(minutes=5))], T0
    )
    samples = await scrape(api_only)
    assert value(samples, "herald_outbox_due_messages") == 2  # the third is not due yet
    assert value(samples, "herald_outbox_oldest_due_age_seconds") == 90
    # An API-only process has no dispatcher: it exports no breaker or in-flight figures.
    assert not any(name == "herald_dispatch_concurrency_limit" for name, _ in samples)


async def test_a_worker_serves_metrics_with_its_breaker_and_concurrency_limit(start_herald, probe):
    worker = await start_herald(WORKER, dispatch={"concurrency": 7, "breaker_failures": 2, "breaker_open_s": 60.0})
    samples = await scrape(worker)
    assert value(samples, "herald_dispatch_concurrency_limit") == 7
    assert value(samples, "herald_messages_in_flight") == 0
    assert value(samples, "herald_circuit_breaker_state", state="closed") == 1
    assert value(samples, "herald_circuit_breaker_state", state="open") == 0
    assert (await worker.get("/healthz")).status == 200

    api = await start_herald(frozenset({Role.API}))
    probe.state.faults.update({"outage": True})
    await add_clients(api, 3)
    await add_mailing(api)
    await eventually(lambda: scraped(worker, "herald_circuit_breaker_state", state="open"))
    samples = await scrape(worker)
    assert value(samples, "herald_circuit_breaker_state", state="closed") == 0
    assert value(samples, "herald_dispatch_concurrency_limit") < 7  # 5xx halves the limit


async def test_a_herald_worker_process_serves_metrics_on_its_worker_port(workers):
    port = free_port()
    workers.spawn(HERALD_HTTP_WORKER_PORT=str(port))
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
        text = await eventually(lambda: _get_text(http, "/metrics"), timeout=30)
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "herald_circuit_breaker_state",
        "herald_dispatch_concurrency_limit",
        "herald_outbox_due_messages",
        "herald_message_transitions",
        "herald_job_runs",
    } <= names


async def _get_text(http, path):
    try:
        async with http.get(path) as response:
            return await response.text() if response.status == 200 else None
    except aiohttp.ClientConnectionError:
        return None  # not listening yet
