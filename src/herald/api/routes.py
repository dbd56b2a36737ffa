"""URL map of the HTTP API."""

from __future__ import annotations

from aiohttp import web

from herald.api import clients, health, mailings, messages, stats

PREFIX = "/api/v1"
ID = r"{id:\d+}"


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_post(f"{PREFIX}/clients", clients.create_client)
    app.router.add_get(f"{PREFIX}/clients", clients.list_clients)
    app.router.add_get(f"{PREFIX}/clients/{ID}", clients.get_client)
    app.router.add_patch(f"{PREFIX}/clients/{ID}", clients.update_client)
    app.router.add_delete(f"{PREFIX}/clients/{ID}", clients.delete_client)
    app.router.add_post(f"{PREFIX}/mailings", mailings.create_mailing)
    app.router.add_get(f"{PREFIX}/mailings", mailings.list_mailings)
    app.router.add_get(f"{PREFIX}/mailings/stats", stats.all_stats)
    app.router.add_get(f"{PREFIX}/mailings/{ID}", mailings.get_mailing)
    app.router.add_patch(f"{PREFIX}/mailings/{ID}", mailings.update_mailing)
    app.router.add_delete(f"{PREFIX}/mailings/{ID}", mailings.delete_mailing)
    app.router.add_get(f"{PREFIX}/mailings/{ID}/stats", stats.mailing_stats)
    app.router.add_get(f"{PREFIX}/messages", messages.list_messages)
