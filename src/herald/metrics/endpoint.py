"""GET /metrics in the Prometheus text format, and the middleware that times every HTTP request."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.errors import PyMongoError

from herald.app_keys import clock_key, metrics_key, store_key
from herald.metrics.instruments import Metrics

log = logging.getLogger(__name__)

UNMATCHED = "unmatched"  # the route label of requests no route matched (404, 405): their paths are unbounded
DATABASE_READ_TIMEOUT_S = 2.0


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500  # what aiohttp answers for an exception that escapes every handler
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = UNMATCHED if resource is None else resource.canonical
        request.app[metrics_key].http_request(request.method, route, status, time.perf_counter() - started)


async def serve_metrics(request: web.Request) -> web.Response:
    app = request.app
    metrics = app[metrics_key]
    await _read_database(app, metrics)
    return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _read_database(app: web.Application, metrics: Metrics) -> None:
    """The outbox backlog and the last report, shared by every process; NaN when the database does not answer."""
    store, now = app[store_key], app[clock_key].now()
    try:
        async with asyncio.timeout(DATABASE_READ_TIMEOUT_S):
            (due, oldest_due_at), last_sent = await asyncio.gather(
                store.messages.backlog(now), store.reports.last_sent()
            )
    except (PyMongoError, TimeoutError):
        log.warning("metrics: the database did not answer; its gauges read NaN", exc_info=True)
        metrics.database_up.set(0)
        for gauge in (metrics.backlog, metrics.oldest_due_age, metrics.report_last_sent):
            gauge.set(float("nan"))
        return
    metrics.database_up.set(1)
    metrics.backlog.set(due)
    metrics.oldest_due_age.set(0 if oldest_due_at is None else max(0.0, (now - oldest_due_at).total_seconds()))
    metrics.report_last_sent.set(0 if last_sent is None else last_sent.timestamp())
