"""URL map of the HTTP API."""

from __future__ import annotations

import functools

from aiohttp import web

from herald.api import clients, health, imports, mailings, messages, stats

PREFIX = "/api/v1"
OPENAPI_URL = f"{PREFIX}/openapi.json"
ID = r"{id:\d+}"


def setup_routes(app: web.Application) -> None:
    # GET routes without the automatic HEAD twin, which would show up as a second operation in the docs.
    add_get = functools.partial(app.router.add_get, allow_head=False)
    add_get("/healthz", health.healthz)
    add_get("/readyz", health.readyz)
    app.router.add_post(f"{PREFIX}/clients", clients.create_client)
    add_get(f"{PREFIX}/clients", clients.list_clients)
    app.router.add_post(f"{PREFIX}/clients/import", imports.import_clients)
    add_get(f"{PREFIX}/clients/export", imports.export_clients)
    add_get(f"{PREFIX}/imports/{ID}", imports.get_import)
    add_get(f"{PREFIX}/clients/{ID}", clients.get_client)
    app.router.add_patch(f"{PREFIX}/clients/{ID}", clients.update_client)
    app.router.add_delete(f"{PREFIX}/clients/{ID}", clients.delete_client)
    app.router.add_post(f"{PREFIX}/mailings", mailings.create_mailing)
    add_get(f"{PREFIX}/mailings", mailings.list_mailings)
    add_get(f"{PREFIX}/mailings/stats", stats.all_stats)
    add_get(f"{PREFIX}/mailings/{ID}", mailings.get_mailing)
    app.router.add_patch(f"{PREFIX}/mailings/{ID}", mailings.update_mailing)
    app.router.add_delete(f"{PREFIX}/mailings/{ID}", mailings.delete_mailing)
    add_get(f"{PREFIX}/mailings/{ID}/stats", stats.mailing_stats)
    app.router.add_post(f"{PREFIX}/mailings/{ID}/pause", mailings.pause_mailing)
    app.router.add_post(f"{PREFIX}/mailings/{ID}/resume", mailings.resume_mailing)
    app.router.add_post(f"{PREFIX}/mailings/{ID}/retry-failed", mailings.retry_failed)
    app.router.add_post(f"{PREFIX}/mailings/{ID}/test", mailings.test_send)
    add_get(f"{PREFIX}/messages", messages.list_messages)
