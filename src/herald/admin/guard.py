"""Every admin page needs a session (the provider's login, or the local operator in mode none); every POST needs
the session's CSRF token; writes need the admin role."""

from __future__ import annotations

import hmac
import logging
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from herald.admin.common import render
from herald.admin.session import Session, session_key, sessions_key
from herald.app_keys import config_key
from herald.auth import LOCAL_OPERATOR
from herald.errors import NotFound

log = logging.getLogger(__name__)

# Routes a visitor without a session must reach.
OPEN_ROUTES = frozenset({"login", "callback", "logged_out", "static"})
# Forms that change nothing in Herald, so a viewer may send them too.
VIEWER_FORMS = frozenset({"logout"})
# Forms read as a stream (a file upload): their CSRF token comes in the action's URL, so that the body need not be
# read before the handler streams it.
STREAMED_FORMS = frozenset({"import_upload"})


def redirect(location: str) -> web.Response:
    """303: after a POST the browser follows with a GET, so a reload never repeats the form."""
    return web.Response(status=303, headers={"Location": location})


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "error.html", {"status": status, "message": message}, status=status)


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.route.name in OPEN_ROUTES:
        return await handler(request)
    sessions = request.app[sessions_key]
    session = sessions.read(request)
    started = session is None
    if session is None:
        if request.config_dict[config_key].auth.admin_ui_login:
            return redirect(f"/admin/login?next={quote(request.path_qs)}")
        session = Session.start(LOCAL_OPERATOR)
    request[session_key] = session
    if request.method == "POST":
        if request.match_info.route.name in STREAMED_FORMS:
            token = request.query.get("csrf", "")
        else:
            token = str((await request.post()).get("csrf", ""))
        if not hmac.compare_digest(token, session.csrf):
            log.warning("admin form without a valid CSRF token", extra={"path": request.path})
            return error_page(
                request, 403, "This form has expired or did not come from Herald. Reload the page and try again."
            )
        if not session.principal.can_write and request.match_info.route.name not in VIEWER_FORMS:
            return error_page(request, 403, "Only an admin may change things; you are a viewer.")
    try:
        response = await handler(request)
    except NotFound as exc:
        response = error_page(request, 404, exc.detail)
    if started:
        sessions.write(response, request, session)
    return response
