"""One case per fault of the external API: every message ends in the right state, nothing arrives at or after
the mailing's end, duplicates stay within the documented cases, and retries are bounded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from tests.helpers import T0, add_mailing, counts, insert_clients

MESSAGES = 20
END = T0 + timedelta(minutes=10)
MAX_ATTEMPTS = 8
DISPATCH = {
    "concurrency": 5,
    "max_attempts": MAX_ATTEMPTS,
    "backoff_base_s": 1.0,
    "backoff_cap_s": 8.0,
    "breaker_failures": 5,
    "breaker_open_s": 0.1,
    "breaker_max_open_s": 0.2,
}


@dataclass
class Case:
    faults: dict[str, Any] = field(default_factory=dict)  # set at the start
    script: list[tuple[str, int]] = field(default_factory=list)  # scripted faults, in order
    heal_after_s: float | None = None  # fake seconds after which the faults are lifted
    expected: dict[str, int] = field(default_factory=lambda: {"sent": MESSAGES})
    max_duplicates: int = 0
    sender: dict[str, Any] = field(default_factory=dict)


CASES = {
    "500 burst": Case(script=[("500", 30)]),
    "502 burst": Case(script=[("502", 30)]),
    "503 burst": Case(script=[("503", 30)]),
    "429 with Retry-After": Case(faults={"retry_after_s": 5}, script=[("429", 30)]),
    "200 with a malformed body": Case(script=[("malformed", 30)]),
    "dropped connections": Case(script=[("drop", 30)]),
    # The emulator accepts after 0.6 s what Herald gave up on at 0.2 s: the documented source of duplicates.
    "latency beyond the timeout": Case(
        faults={"latency_ms": 600}, heal_after_s=30, sender={"timeout_s": 0.2}, max_duplicates=MESSAGES
    ),
    "a full outage that ends": Case(faults={"outage": True}, heal_after_s=120),
    "an outage that outlasts the mailing": Case(faults={"outage": True}, expected={"expired": MESSAGES}),
    # More refusals than MAX_ATTEMPTS: a refused token must not fail messages.
    "401 from a bad token": Case(script=[("401", 15)]),
}


@pytest.mark.parametrize("name", CASES)
async def test_fault(name, start_herald, db, store, probe, clock):
    case = CASES[name]
    await insert_clients(db, MESSAGES)
    probe.state.faults.update({**case.faults, "script": [{"fault": f, "count": n} for f, n in case.script]})
    api = await start_herald(dispatch=DISPATCH, **({"sender": case.sender} if case.sender else {}))
    mailing = await add_mailing(api, end_at=END.isoformat())

    while clock.now() < END + timedelta(minutes=1):
        await asyncio.sleep(0.05)
        if await counts(store, mailing["id"]) == case.expected:
            break
        clock.advance(5)
        if case.heal_after_s is not None and clock.now() >= T0 + timedelta(seconds=case.heal_after_s):
            probe.state.faults.update({"outage": False, "latency_ms": 0})

    assert await _settled_counts(store, mailing["id"]) == case.expected
    assert probe.requests_at_or_after(END) == 0
    accepted = probe.accepted()
    assert sum(n - 1 for n in accepted.values()) <= case.max_duplicates
    per_message = _requests_per_message(probe)
    assert max(per_message.values()) <= MAX_ATTEMPTS + 1  # one quick in-call retry on a dropped connection
    messages = await store.messages.page(limit=MESSAGES, mailing_id=mailing["id"])
    assert all(m.attempts <= MAX_ATTEMPTS for m in messages)


async def _settled_counts(store, mailing_id: int) -> dict[str, int]:
    """Counts once writes in flight have landed (outcomes are flushed every 50 ms)."""
    await asyncio.sleep(0.2)
    return await counts(store, mailing_id)


def _requests_per_message(probe) -> dict[int, int]:
    seen: dict[int, int] = {}
    for msg_id, _, _ in probe.state.ledger.arrivals:
        seen[msg_id] = seen.get(msg_id, 0) + 1
    return seen or {0: 0}
