"""A faithful local stand-in for the external send API, with fault injection and a record of deliveries.

Same path and body as the real API (`POST /v1/send/{msgId}`, HS256 JWT bearer, `{"id", "phone", "text"}`,
success `{"code": 0, "message": "OK"}`). Faults are set at start and changed at runtime through `/_probe/faults`;
`/_probe/stats` and `/_probe/deliveries` tell tests and benchmarks what arrived.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

import jwt
from aiohttp import web

from herald.clock import SYSTEM_CLOCK, Clock
from herald.config import ProbeConfig
from herald.security import hide_server

FAULT_KINDS = ("500", "502", "503", "429", "400", "404", "401", "malformed", "drop", "hang")


@dataclass
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0  # share of requests answered with a status drawn from error_statuses
    error_statuses: list[int] = field(default_factory=lambda: [500, 502, 503, 429])
    retry_after_s: int = 1  # sent with 429
    malformed_rate: float = 0.0  # 200 with a body that is not the success body
    drop_rate: float = 0.0  # connection closed without an answer
    outage: bool = False  # every request answered 503
    # Scripted faults, used before the rates: e.g. [{"fault": "500", "count": 3}] fails the next three requests.
    script: list[dict[str, Any]] = field(default_factory=list)
    # Scripts of particular messages, by msgId, used before anything else: {"42": [{"fault": "500", "count": 2}]}
    # fails the first two requests for message 42, as an API that rejects some numbers does.
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        steps = [*changes.get("script", []), *(s for script in changes.get("messages", {}).values() for s in script)]
        for step in steps:
            if step.get("fault") not in FAULT_KINDS or int(step.get("count", 1)) < 1:
                raise ValueError(f"script steps are {{'fault': one of {FAULT_KINDS}, 'count': n >= 1}}")
        if any(not str(msg_id).isdigit() for msg_id in changes.get("messages", {})):
            raise ValueError("messages are scripted by msgId, a string of digits")
        for name, value in changes.items():
            setattr(self, name, value)


@dataclass
class Ledger:
    """What arrived: every request's time and answer, and how often each msgId was accepted."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    by_outcome: Counter[str] = field(default_factory=Counter)
    accepted: Counter[int] = field(default_factory=Counter)
    arrivals: list[tuple[int, datetime, str]] = field(default_factory=list)
    bodies: dict[int, dict[str, Any]] = field(default_factory=dict)  # the last valid body of each msgId

    def record(self, msg_id: int, at: datetime, outcome: str) -> None:
        self.requests += 1
        self.by_outcome[outcome] += 1
        self.arrivals.append((msg_id, at, outcome))
        if outcome == "ok":
            self.accepted[msg_id] += 1

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_outcome": dict(self.by_outcome),
            "accepted": sum(self.accepted.values()),
            "unique_accepted": len(self.accepted),
            "duplicates": sum(n - 1 for n in self.accepted.values()),
            "max_in_flight": self.max_in_flight,
            "last_arrival": max((at for _, at, _ in self.arrivals), default=None),
        }


@dataclass
class ProbeState:
    secret: str
    faults: Faults
    clock: Clock
    rng: random.Random
    ledger: Ledger = field(default_factory=Ledger)

    def next_fault(self, msg_id: int) -> str | None:
        if self.faults.outage:
            return "503"
        for script in (self.faults.messages.get(str(msg_id)), self.faults.script):
            if script:
                step = script[0]
                step["count"] = int(step.get("count", 1)) - 1
                if step["count"] <= 0:
                    script.pop(0)
                return str(step["fault"])
        roll = self.rng.random()
        for kind, rate in (("drop", self.faults.drop_rate), ("malformed", self.faults.malformed_rate)):
            if roll < rate:
                return kind
            roll -= rate
        if roll < self.faults.error_rate:
            return str(self.rng.choice(self.faults.error_statuses))
        return None


probe_state_key = web.AppKey("probe_state", ProbeState)


def make_token(secret: str, subject: str = "herald") -> str:
    """A bearer token the emulator accepts (the real API's tokens are HS256 JWTs as well)."""
    return jwt.encode({"sub": subject}, secret, algorithm="HS256")


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"code": status, "message": message}, status=status, headers=headers)


async def send(request: web.Request) -> web.StreamResponse:
    ledger = request.app[probe_state_key].ledger
    ledger.in_flight += 1
    ledger.max_in_flight = max(ledger.max_in_flight, ledger.in_flight)
    try:
        return await _answer(request)
    finally:
        ledger.in_flight -= 1


async def _answer(request: web.Request) -> web.StreamResponse:
    state = request.app[probe_state_key]
    raw_id = request.match_info["msg_id"]
    msg_id = int(raw_id) if raw_id.isdigit() else -1
    arrived = state.clock.now()
    fault = state.next_fault(msg_id)
    # The request is whole when it arrives, as at the real API: a client that gives up during the latency does
    # not take it back, so it is still recorded (and accepted, if valid) instead of failing on a closed connection.
    raw_body = await request.read()
    if state.faults.latency_ms:
        await asyncio.sleep(state.faults.latency_ms / 1000)
    if fault == "hang":
        await asyncio.sleep(3600)
    if fault == "drop":
        state.ledger.record(msg_id, arrived, "drop")
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=204)  # never written: the connection is gone
    header = request.headers.get("Authorization", "")
    try:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or fault == "401":
            raise jwt.InvalidTokenError("no bearer token")
        jwt.decode(token, state.secret, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        state.ledger.record(msg_id, arrived, "401")
        return _error(401, "Unauthorized")
    try:
        body = json.loads(raw_body)
        valid = (
            isinstance(body, dict)
            and set(body) == {"id", "phone", "text"}
            and type(body["id"]) is int
            and type(body["phone"]) is int
            and isinstance(body["text"], str)
            and body["id"] == msg_id
        )
    except ValueError:
        valid = False
    if not valid:
        state.ledger.record(msg_id, arrived, "400")
        return _error(400, "Bad request: body must be {id: msgId, phone: int, text: str}")
    state.ledger.bodies[msg_id] = body
    if fault is not None and fault.isdigit():
        state.ledger.record(msg_id, arrived, fault)
        headers = {"Retry-After": str(state.faults.retry_after_s)} if fault == "429" else {}
        return _error(int(fault), "injected fault", **headers)
    if fault == "malformed":
        state.ledger.record(msg_id, arrived, "malformed")
        return web.Response(text="<html>upstream glitch</html>", content_type="text/html")
    state.ledger.record(msg_id, arrived, "ok")
    return web.json_response({"code": 0, "message": "OK"})


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(asdict(request.app[probe_state_key].faults))


async def put_faults(request: web.Request) -> web.Response:
    faults = request.app[probe_state_key].faults
    try:
        faults.update(await request.json())
    except (ValueError, TypeError, AttributeError) as exc:
        return _error(400, str(exc))
    return web.json_response(asdict(faults))


async def get_stats(request: web.Request) -> web.Response:
    return web.json_response(
        request.app[probe_state_key].ledger.summary(), dumps=functools.partial(json.dumps, default=str)
    )


async def get_deliveries(request: web.Request) -> web.Response:
    arrivals = request.app[probe_state_key].ledger.arrivals
    wanted = request.query.get("msg_id")
    rows = [
        {"msg_id": msg_id, "at": at.isoformat(), "outcome": outcome}
        for msg_id, at, outcome in arrivals
        if wanted is None or str(msg_id) == wanted
    ]
    return web.json_response(rows)


async def reset(request: web.Request) -> web.Response:
    state = request.app[probe_state_key]
    state.ledger = Ledger()
    state.faults = Faults()
    return web.json_response({"reset": True})


def create_probe_app(config: ProbeConfig, *, clock: Clock = SYSTEM_CLOCK) -> web.Application:
    app = web.Application()
    app.on_response_prepare.append(hide_server)
    app[probe_state_key] = ProbeState(
        secret=config.jwt_secret,
        faults=Faults(
            latency_ms=config.latency_ms,
            error_rate=config.error_rate,
            malformed_rate=config.malformed_rate,
            drop_rate=config.drop_rate,
            outage=config.outage,
        ),
        clock=clock,
        rng=random.Random(config.seed),
    )
    app.router.add_post("/v1/send/{msg_id}", send)
    app.router.add_get("/_probe/faults", get_faults)
    app.router.add_put("/_probe/faults", put_faults)
    app.router.add_get("/_probe/stats", get_stats)
    app.router.add_get("/_probe/deliveries", get_deliveries)
    app.router.add_post("/_probe/reset", reset)
    return app
