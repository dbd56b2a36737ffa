"""The admin web UI under /admin/: server-rendered pages over the service layer, login through the provider."""

from __future__ import annotations

import secrets
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from herald.admin import clients, dashboard, imports, login, mailings
from herald.admin.common import localtime
from herald.admin.guard import guard_middleware
from herald.admin.session import Sessions, sessions_key
from herald.config import AuthConfig

HERE = Path(__file__).parent
ID = r"{id:\d+}"


def setup_admin(app: web.Application, auth: AuthConfig) -> None:
    admin = web.Application(middlewares=[guard_middleware])
    # Without a login (mode none, loopback only) sessions merely carry CSRF tokens; they may die with the process.
    admin[sessions_key] = Sessions(
        auth.session_secret or secrets.token_hex(32), auth.session_max_age_s, auth.public_url
    )
    env = aiohttp_jinja2.setup(admin, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters["localtime"] = localtime
    _routes(admin.router)
    app.add_subapp("/admin/", admin)
    app.router.add_get("/admin", _to_admin)


def _routes(router: web.UrlDispatcher) -> None:
    router.add_static("/static", HERE / "static", name="static")
    router.add_get("/login", login.login, name="login")
    router.add_get("/callback", login.callback, name="callback")
    router.add_post("/logout", login.logout, name="logout")
    router.add_get("/logged-out", login.logged_out, name="logged_out")
    router.add_get("/", dashboard.dashboard)
    router.add_get("/mailings", mailings.list_mailings)
    router.add_get("/mailings/new", mailings.new_mailing)
    router.add_post("/mailings/new", mailings.create_mailing)
    router.add_get("/mailings/audience", mailings.audience_preview)
    router.add_get(f"/mailings/{ID}", mailings.show_mailing)
    router.add_get(f"/mailings/{ID}/progress", mailings.mailing_progress)
    router.add_get(f"/mailings/{ID}/edit", mailings.edit_mailing)
    router.add_post(f"/mailings/{ID}/edit", mailings.update_mailing)
    router.add_get(f"/mailings/{ID}/delete", mailings.confirm_delete_mailing)
    router.add_post(f"/mailings/{ID}/delete", mailings.delete_mailing)
    router.add_post(f"/mailings/{ID}/pause", mailings.pause_mailing)
    router.add_post(f"/mailings/{ID}/resume", mailings.resume_mailing)
    router.add_post(f"/mailings/{ID}/retry-failed", mailings.retry_failed)
    router.add_post(f"/mailings/{ID}/test", mailings.test_send)
    router.add_get("/clients", clients.list_clients)
    router.add_get("/clients/export", imports.export_clients)
    router.add_get("/imports/new", imports.new_import)
    router.add_post("/imports/new", imports.upload_import, name="import_upload")
    router.add_get(f"/imports/{ID}", imports.show_import)
    router.add_get(f"/imports/{ID}/progress", imports.import_progress)
    router.add_get("/clients/new", clients.new_client)
    router.add_post("/clients/new", clients.create_client)
    router.add_get(f"/clients/{ID}/edit", clients.edit_client)
    router.add_post(f"/clients/{ID}/edit", clients.update_client)
    router.add_get(f"/clients/{ID}/delete", clients.confirm_delete_client)
    router.add_post(f"/clients/{ID}/delete", clients.delete_client)


async def _to_admin(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/admin/")
