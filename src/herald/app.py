"""The one aiohttp application factory: API, planner and dispatcher, in whatever combination a process runs."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Callable, Collection
from typing import TypeVar

import aiohttp
from aiohttp import web
from aiohttp_apigami import validation_middleware

from herald.admin import setup_admin
from herald.api.health import healthz, readyz
from herald.api.openapi import setup_docs
from herald.api.problems import problem_middleware
from herald.api.requests import request_context_middleware
from herald.api.routes import setup_routes
from herald.app_keys import (
    clock_key,
    config_key,
    db_key,
    dispatcher_key,
    http_session_key,
    importer_key,
    metrics_key,
    planner_key,
    service_key,
    store_key,
    wakeups_key,
)
from herald.auth.middleware import api_auth_middleware, authenticator_ctx
from herald.clock import SYSTEM_CLOCK, Clock
from herald.config import Config
from herald.dispatch.dispatcher import Dispatcher
from herald.dispatch.planner import Planner
from herald.dispatch.sender import Sender
from herald.imports.runner import Importer
from herald.jobs import scheduler_ctx
from herald.metrics import Metrics
from herald.metrics.endpoint import metrics_middleware, serve_metrics
from herald.security import cors_middleware, setup_security
from herald.service import Service, Wakeups
from herald.store import Store
from herald.store.db import connect, ensure_indexes

log = logging.getLogger(__name__)


class Role(enum.StrEnum):
    API = "api"
    PLANNER = "planner"
    DISPATCHER = "dispatcher"


ALL_ROLES = frozenset(Role)
W = TypeVar("W", Planner, Dispatcher)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    # The client belongs to the event loop it was made on: create it here, not at import or in main().
    config = app[config_key]
    client = connect(config.mongo.url, config.mongo.timeout_s)
    db = client[config.mongo.database]
    try:
        await db.command("ping")
        await ensure_indexes(db)
        store = Store.over(db, stats_max_age_s=config.http.stats_max_age_s)
        app[db_key] = db
        app[store_key] = store
        app[service_key] = Service(store, app[clock_key], app[wakeups_key], batch_size=config.planner.batch_size)
        log.info("database ready", extra={"database": config.mongo.database})
        yield
    finally:
        await client.close()


async def importer_ctx(app: web.Application) -> AsyncIterator[None]:
    """Imports run in the API process that received them; at shutdown each stops and says where."""
    importer = app[importer_key] = Importer(app[service_key], app[clock_key], app[config_key].planner.batch_size)
    yield
    await importer.stop()


async def http_session_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[config_key].sender
    connector = aiohttp.TCPConnector(limit=config.max_connections, limit_per_host=config.max_connections)
    async with aiohttp.ClientSession(connector=connector, raise_for_status=False) as session:
        app[http_session_key] = session
        yield


def _worker_ctx(
    name: str, key: web.AppKey[W], make: Callable[[web.Application], W], grace_s: Callable[[Config], float]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs a worker's `run()` as a task and stops it gracefully on shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        worker = app[key] = make(app)
        task = asyncio.create_task(worker.run(), name=name)
        yield
        worker.stop()
        try:
            # The worker drains itself within its grace period; the margin covers the final database writes.
            await asyncio.wait_for(task, grace_s(app[config_key]) + 5)
        except TimeoutError:
            log.error("%s did not stop in time", name)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s crashed", name, exc_info=task.exception())

    ctx.__name__ = f"{name}_ctx"
    return ctx


planner_ctx = _worker_ctx(
    "planner",
    planner_key,
    lambda app: Planner(
        app[store_key],
        app[clock_key],
        app[config_key].planner,
        app[metrics_key],
        wakeup=app[wakeups_key].planner,
        dispatcher_wakeup=app[wakeups_key].dispatcher,
    ),
    lambda config: 0,
)

dispatcher_ctx = _worker_ctx(
    "dispatcher",
    dispatcher_key,
    lambda app: Dispatcher(
        app[store_key],
        Sender(app[http_session_key], app[config_key].sender, app[clock_key], app[metrics_key]),
        app[clock_key],
        app[config_key].dispatch,
        app[metrics_key],
        wakeup=app[wakeups_key].dispatcher,
    ),
    lambda config: config.dispatch.grace_s,
)


def create_app(config: Config, *, clock: Clock = SYSTEM_CLOCK, roles: Collection[Role] = ALL_ROLES) -> web.Application:
    """Build the application; no I/O happens until it starts."""
    access_control = config.auth.mode == "oidc"
    app = web.Application(
        middlewares=[
            metrics_middleware,
            request_context_middleware,
            # Outside the problem middleware, so that errors get CORS headers; before access control, which a
            # preflight (no credentials) would not pass.
            cors_middleware(config),
            problem_middleware,
            *([api_auth_middleware] if access_control and Role.API in roles else []),
            validation_middleware,
        ]
    )
    setup_security(app, config)
    app[config_key] = config
    app[clock_key] = clock
    app[wakeups_key] = Wakeups()
    app[metrics_key] = Metrics()
    app.cleanup_ctx.append(database_ctx)
    # Every process, API or worker, answers a scrape on its own port.
    app.router.add_get("/metrics", serve_metrics, allow_head=False)
    if Role.API in roles:
        setup_routes(app)
        setup_docs(app, access_control=access_control)
        if access_control:
            app.cleanup_ctx.append(authenticator_ctx)
        app.router.add_get("/docs", _to_docs)
        app.cleanup_ctx.append(importer_ctx)
        if config.auth.admin_ui:
            setup_admin(app, config.auth)
    else:
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
    if Role.PLANNER in roles:
        app.cleanup_ctx.extend([planner_ctx, scheduler_ctx])
    if Role.API in roles or Role.DISPATCHER in roles:  # the API's test sends, the dispatcher's deliveries
        app.cleanup_ctx.append(http_session_ctx)
    if Role.DISPATCHER in roles:
        app.cleanup_ctx.append(dispatcher_ctx)
    return app


async def _to_docs(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/docs/")
