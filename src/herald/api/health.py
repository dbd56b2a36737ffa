"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from aiohttp import web
from pymongo.errors import PyMongoError

from herald.app_keys import db_key


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The database answers: the process can do its work."""
    try:
        async with asyncio.timeout(2):
            await request.app[db_key].command("ping")
    except (PyMongoError, TimeoutError) as exc:
        return web.json_response({"status": "unavailable", "database": type(exc).__name__}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})
