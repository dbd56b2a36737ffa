"""Every metric Herald exports, on a registry of its own per app (tests build many apps in one process).

Labels only take bounded values: route templates, statuses, outcome reasons, job names. Never ids or phones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from herald.domain.breaker import BreakerState

# Latency buckets in seconds: an API answer in milliseconds, an external send up to its timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        counter, gauge = partial(Counter, registry=registry), partial(Gauge, registry=registry)
        histogram = partial(Histogram, buckets=LATENCY_BUCKETS, registry=registry)
        self.http_requests = counter(
            "herald_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
        )
        self.http_latency = histogram(
            "herald_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
        )
        self.transitions = counter(
            "herald_message_transitions",
            "Messages moved from one status to another by this process.",
            ["from", "to"],
        )
        self.external_requests = counter(
            "herald_external_requests",
            "Requests to the external send API, by outcome.",
            ["outcome"],
        )
        self.external_latency = histogram(
            "herald_external_request_duration_seconds",
            "Time from a request to the external API to its outcome.",
        )
        self.planned_messages = counter(
            "herald_planner_messages_created",
            "Messages the planner created for started mailings.",
        )
        self.planned_mailings = counter(
            "herald_planner_mailings_planned",
            "Mailings whose audience the planner finished.",
        )
        self.closed_mailings = counter(
            "herald_planner_mailings_closed",
            "Ended mailings the planner closed (their unsent messages expired).",
        )
        self.job_runs = counter(
            "herald_job_runs",
            "Scheduled job runs, by job and result (ok, error, missed).",
            ["job", "result"],
        )
        # Set at scrape time from the database, which every process shares.
        self.database_up = gauge(
            "herald_database_up",
            "1 if the database answered this scrape's queries, else 0.",
        )
        self.backlog = gauge(
            "herald_outbox_due_messages",
            "Messages due for delivery now (pending, or held under an expired lease).",
        )
        self.oldest_due_age = gauge(
            "herald_outbox_oldest_due_age_seconds",
            "How long the longest-waiting due message has been due (0 if none).",
        )
        self.report_last_sent = gauge(
            "herald_report_last_sent_timestamp_seconds",
            "When the last daily statistics email was sent (Unix time; 0 if never).",
        )

    def settled(self, status: str) -> None:
        """A claimed message got its outcome: sent, failed, expired, cancelled, or pending again."""
        self.transitions.labels("sending", status).inc()

    def mailing_closed(self, expired: int) -> None:
        """A mailing ended; its `expired` unsent messages will never be sent."""
        self.closed_mailings.inc()
        self.transitions.labels("pending", "expired").inc(expired)

    def external_request(self, outcome: str, seconds: float) -> None:
        self.external_requests.labels(outcome).inc()
        self.external_latency.observe(seconds)

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "other"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_latency.labels(method, route).observe(seconds)

    def watch_dispatcher(self, status: Callable[[], Mapping[str, Any]]) -> None:
        """Export the dispatcher's flow control, read at each scrape (a process without a dispatcher has none)."""
        self.registry.register(_DispatcherCollector(status))


class _DispatcherCollector(Collector):
    def __init__(self, status: Callable[[], Mapping[str, Any]]) -> None:
        self._status = status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = self._status()
        breaker = GaugeMetricFamily(
            "herald_circuit_breaker_state",
            "1 for the circuit breaker's current state, 0 for the others.",
            labels=["state"],
        )
        for state in BreakerState:
            breaker.add_metric([state.value], 1 if state.value == status["breaker"] else 0)
        yield breaker
        yield GaugeMetricFamily(
            "herald_dispatch_concurrency_limit",
            "The adaptive limit on requests to the external API in flight.",
            value=status["concurrency_limit"],
        )
        yield GaugeMetricFamily(
            "herald_messages_in_flight",
            "Requests to the external API in flight in this process.",
            value=status["in_flight"],
        )
