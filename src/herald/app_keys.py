"""Typed application state: every long-lived object the handlers and workers share."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from herald.auth import Authenticator, Principal
from herald.clock import Clock
from herald.config import Config
from herald.dispatch.dispatcher import Dispatcher
from herald.dispatch.planner import Planner
from herald.imports.runner import Importer
from herald.metrics import Metrics
from herald.service import Service, Wakeups
from herald.store import Store
from herald.store.db import Database

config_key = web.AppKey("config", Config)
clock_key = web.AppKey("clock", Clock)
wakeups_key = web.AppKey("wakeups", Wakeups)
metrics_key = web.AppKey("metrics", Metrics)
db_key = web.AppKey("db", Database)
store_key = web.AppKey("store", Store)
service_key = web.AppKey("service", Service)
http_session_key = web.AppKey("http_session", aiohttp.ClientSession)
planner_key = web.AppKey("planner", Planner)
dispatcher_key = web.AppKey("dispatcher", Dispatcher)
authenticator_key = web.AppKey("authenticator", Authenticator)
importer_key = web.AppKey("importer", Importer)
# Who sent a request, once the API's access control has checked its token (auth mode oidc).
principal_key = web.RequestKey("principal", Principal)
