"""One real mailing per fault of the external API, through a real Herald: end states, duplicates, lateness, and
how many requests the API got while it was down.

Everything runs on 127.0.0.1: a FerretDB of its own (unless HERALD_MONGO_URL is set), and for each fault a fresh
database, a fresh emulator and a fresh `herald serve`, all as subprocesses. Each mailing ends a few seconds after
it is created (real wall clock), so a fault that outlasts it must expire its messages. A case stops when every
message has reached a final state, or shortly after the mailing's end; the whole run stops by itself.

    .venv/bin/python bench/faults.py [--messages N] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

# The shared machinery of the benchmarks (subprocesses, /proc, the database ceilings) lives in delivery.py.
from delivery import (
    CONTROL_TIMEOUT,
    HOST,
    Child,
    Database,
    MongoClient,
    Rate,
    bounded,
    child_env,
    create_mailing,
    db_claim_ceiling,
    db_insert_ceiling,
    mongo_base,
    run_with_logs,
    say,
    seed_clients,
    start_probe,
    wait_http_ok,
    with_database,
)
from herald.config import Config, load_config
from herald.localdb import free_port
from herald.probe.app import make_token

FINAL = ("sent", "failed", "expired", "cancelled")
POLL_S = 0.25
# After the mailing's end the planner expires what is pending (it polls every second) and the dispatcher settles
# what it holds: a few seconds are plenty; a case that still is not final then is reported as it stands.
AFTER_END_S = 8.0
# Short timeouts and pauses so that a case plays out in seconds of real time; everything else is config.yaml's.
SENDER_TIMEOUT_S = 2.0
HERALD_SETTINGS = {
    "HERALD_SENDER_TIMEOUT_S": str(SENDER_TIMEOUT_S),
    "HERALD_DISPATCH_BACKOFF_BASE_S": "0.5",
    "HERALD_DISPATCH_BACKOFF_CAP_S": "2",
    "HERALD_DISPATCH_BREAKER_OPEN_S": "0.5",
    "HERALD_DISPATCH_BREAKER_MAX_OPEN_S": "2",
}
RECOVERING_END_S = 30.0  # long enough to deliver everything once the fault is over
OUTLASTING_END_S = 8.0
CEILING_SECONDS = 10.0


@dataclass(frozen=True)
class Case:
    faults: dict[str, Any]  # set on the emulator just before the mailing is created
    end_s: float = RECOVERING_END_S  # the mailing's end, from its creation
    heal_after_s: float | None = None  # the bench lifts the fault this long after it set it
    expected: str = "sent"  # the state every message must end in


BURST_S = 5.0


def burst(kind: str, **settings: Any) -> Case:
    """The API gives every request this fault for BURST_S seconds, then heals. Timed, not counted: the breaker
    thins the requests of a fault, so a burst of N answers would last as long as the breaker let it."""
    return Case({**settings, "script": [{"fault": kind, "count": 10**9}]}, heal_after_s=BURST_S)


# The first mailing of a fresh database has id 1, so its messages' ids (mailing id and client id in one integer) are
# known before it is created: a poisoned message is scripted by its msgId.
FIRST_MESSAGE_ID = 1 << 32
POISONED, POISON_FAILURES = 10, 3


def poisoned(messages: int) -> Case:
    """The first POISONED messages fail POISON_FAILURES times each with a 500 (the API rejects their numbers for a
    while); every other message is healthy."""
    return Case(
        {
            "messages": {
                str(FIRST_MESSAGE_ID + client_id): [{"fault": "500", "count": POISON_FAILURES}]
                for client_id in range(1, min(POISONED, messages) + 1)
            }
        }
    )


def cases(messages: int) -> dict[str, Case]:
    return {
        "none (control)": Case({}),
        "latency beyond the timeout": Case({"latency_ms": int(SENDER_TIMEOUT_S * 1500)}, heal_after_s=5),
        "500 burst": burst("500"),
        "502 burst": burst("502"),
        "503 burst": burst("503"),
        "429 with Retry-After": burst("429", retry_after_s=2),
        "200 with a malformed body": burst("malformed"),
        "dropped connections": burst("drop"),
        "a full outage that ends": Case({"outage": True}, heal_after_s=6),
        "an outage that outlasts the mailing": Case({"outage": True}, end_s=OUTLASTING_END_S, expected="expired"),
        "401 from a bad token": burst("401"),
        "poison messages among healthy ones": poisoned(messages),
    }


# One case


@dataclass
class Arrival:
    msg_id: int
    at: datetime
    outcome: str


@dataclass
class CaseResult:
    name: str
    case: Case
    messages: int
    counts: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    # Duplicates of messages none of whose requests Herald saw time out or lose its connection. A lost answer is
    # the one documented way to deliver twice in this setup (README, delivery guarantee, case 1): any other is a bug.
    unexplained_duplicates: int = 0
    lateness_s: float = 0.0
    requests: int = 0
    requests_down: int = 0
    down_s: float = 0.0
    done_s: float = 0.0  # from setting the fault until every message was final, or the case stopped
    healthy_s: float | None = None  # from setting the fault until every message never faulted was accepted

    @property
    def final(self) -> bool:
        return sum(self.counts.get(status, 0) for status in FINAL) == self.messages

    def problems(self) -> list[str]:
        found = []
        if self.counts.get(self.case.expected, 0) != self.messages:
            found.append(f"not all {self.case.expected}")
        if self.lateness_s > 0:
            found.append("late")
        if self.unexplained_duplicates:
            found.append("duplicates without a timeout")
        return found


async def count_by_status(db: Database, mailing_id: int) -> dict[str, int] | None:
    pipeline = [{"$match": {"mailing_id": mailing_id}}, {"$group": {"_id": "$status", "n": {"$sum": 1}}}]

    async def query() -> dict[str, int]:
        return {row["_id"]: row["n"] async for row in await db.messages.aggregate(pipeline)}

    result: dict[str, int] | None = await bounded(query)
    return result


async def put_faults(session: aiohttp.ClientSession, probe_base: str, faults: Mapping[str, Any]) -> None:
    async with session.put(f"{probe_base}/_probe/faults", json=dict(faults)) as response:
        response.raise_for_status()


async def arrivals(session: aiohttp.ClientSession, probe_base: str) -> list[Arrival]:
    async with session.get(f"{probe_base}/_probe/deliveries") as response:
        response.raise_for_status()
        rows = await response.json()
    return [Arrival(row["msg_id"], datetime.fromisoformat(row["at"]), row["outcome"]) for row in rows]


def lateness_s(seen: list[Arrival], end_at: datetime) -> float:
    """How long after the mailing's end the last request arrived; 0 when none arrived at or after the end."""
    return max(((a.at - end_at).total_seconds() for a in seen if a.at >= end_at), default=0.0)


def down_window(
    case: Case, set_at: datetime, healed_at: datetime | None, stopped_at: datetime
) -> tuple[datetime, datetime] | None:
    """When the fault was in force: until the bench lifted it, or (never lifted) until the case stopped. None for
    the control case and for faults of a few messages."""
    if not case.faults or "messages" in case.faults:  # a few messages' faults: the API is not down
        return None
    if healed_at is not None:
        return set_at, healed_at
    return set_at, stopped_at


def log_entries(log_path: Path) -> Iterator[dict[str, Any]]:
    """The entries of a Herald JSON log (anything else in the file, a traceback say, is skipped)."""
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            yield entry


def lost_answers(log_path: Path) -> set[int]:
    """Messages for which Herald got no answer to some request: it timed out or lost its connection."""
    return {
        int(entry["message_id"])
        for entry in log_entries(log_path)
        if entry.get("msg") == "external API answered" and entry.get("outcome") in ("timeout", "connection")
    }


def healthy_s(case: Case, seen: list[Arrival], set_at: datetime, messages: int) -> float | None:
    """For the control and the cases that fault particular messages: how long until every other message was
    accepted; None if some never was."""
    if case.faults and "messages" not in case.faults:
        return None
    faulted = {int(msg_id) for msg_id in case.faults.get("messages", {})}
    first_ok: dict[int, datetime] = {}
    for arrival in seen:
        if arrival.outcome == "ok" and arrival.msg_id not in faulted:
            first_ok.setdefault(arrival.msg_id, arrival.at)
    if len(first_ok) < messages - len(faulted):
        return None
    return (max(first_ok.values()) - set_at).total_seconds()


def duplicates(seen: list[Arrival], lost: set[int]) -> tuple[int, int]:
    """Extra acceptances of one msgId at the emulator: all of them, and those no lost answer explains."""
    accepted = Counter(a.msg_id for a in seen if a.outcome == "ok")
    extra = {msg_id: n - 1 for msg_id, n in accepted.items() if n > 1}
    return sum(extra.values()), sum(n for msg_id, n in extra.items() if msg_id not in lost)


def herald_env(mongo_url: str, probe_base: str, port: int, token: str) -> dict[str, str]:
    return child_env(
        {
            **HERALD_SETTINGS,
            "HERALD_MONGO_URL": mongo_url,
            "HERALD_SENDER_URL": f"{probe_base}/v1",
            "HERALD_SENDER_TOKEN": token,
            "HERALD_HTTP_HOST": HOST,
            "HERALD_HTTP_PORT": str(port),
            # Every request's outcome, read back to tell the documented duplicates from the others.
            "HERALD_LOG_LEVEL": "INFO",
            "HERALD_LOG_FORMAT": "json",
        }
    )


async def watch(
    session: aiohttp.ClientSession,
    db: Database,
    probe_base: str,
    case: Case,
    mailing_id: int,
    messages: int,
    end_at: datetime,
    set_at: datetime,
    herald: Child,
) -> tuple[dict[str, int], datetime | None]:
    """Poll until every message is final or the mailing ended AFTER_END_S ago; lift the fault when its time
    comes. Returns the last counts and when the fault was lifted."""
    healed_at = None
    stop_at = end_at + timedelta(seconds=AFTER_END_S)
    counts: dict[str, int] = {}
    while datetime.now(UTC) < stop_at:
        herald.check_alive()
        if (
            case.heal_after_s is not None
            and healed_at is None
            and datetime.now(UTC) >= set_at + timedelta(seconds=case.heal_after_s)
        ):
            await put_faults(session, probe_base, {"outage": False, "latency_ms": 0, "script": []})
            healed_at = datetime.now(UTC)
        counts = await count_by_status(db, mailing_id) or counts
        if sum(counts.get(status, 0) for status in FINAL) >= messages and (
            case.heal_after_s is None or healed_at is not None
        ):
            break
        await asyncio.sleep(POLL_S)
    return counts, healed_at


async def run_case(
    name: str, case: Case, client: MongoClient, base_url: str, config: Config, messages: int, log_dir: Path
) -> CaseResult:
    slug = re.sub(r"\W+", "-", name).strip("-")
    db_name = f"bench_faults_{uuid.uuid4().hex[:8]}"
    db = client[db_name]
    await seed_clients(db, messages)
    herald_port = free_port()
    api_url = f"http://{HOST}:{herald_port}"
    probe, probe_base = start_probe(log_dir, f"probe-{slug}")
    herald: Child | None = None
    result = CaseResult(name, case, messages)
    try:
        herald = Child(
            f"herald-{slug}",
            "serve",
            herald_env(with_database(base_url, db_name), probe_base, herald_port, make_token(config.probe.jwt_secret)),
            log_dir,
        )
        async with aiohttp.ClientSession(timeout=CONTROL_TIMEOUT) as session:
            await wait_http_ok(session, f"{probe_base}/_probe/stats", probe.check_alive)
            await wait_http_ok(session, f"{api_url}/readyz", herald.check_alive)
            await put_faults(session, probe_base, case.faults)
            set_at = datetime.now(UTC)
            mailing_id, end_at = await create_mailing(session, api_url, "Fault bench", case.end_s)
            counts, healed_at = await watch(session, db, probe_base, case, mailing_id, messages, end_at, set_at, herald)
            stopped_at = datetime.now(UTC)
            result.done_s = (stopped_at - set_at).total_seconds()
            # Stopped before the ledger is read, so that nothing Herald still does can arrive unseen.
            await asyncio.to_thread(herald.stop)
            result.counts = await count_by_status(db, mailing_id) or counts
            seen = await arrivals(session, probe_base)
        result.duplicates, result.unexplained_duplicates = duplicates(seen, lost_answers(herald.log_path))
        result.lateness_s = lateness_s(seen, end_at)
        result.requests = len(seen)
        result.healthy_s = healthy_s(case, seen, set_at, messages)
        if window := down_window(case, set_at, healed_at, stopped_at):
            result.requests_down = sum(window[0] <= a.at <= window[1] for a in seen)
            result.down_s = (window[1] - window[0]).total_seconds()
        return result
    finally:
        if herald is not None:
            herald.stop()
        probe.stop()
        await bounded(lambda: client.drop_database(db_name), 60)


# The database's own ceiling


async def claim_settle_ceiling(client: MongoClient, config: Config, messages: int) -> Rate:
    """Bare PyMongo doing Herald's claim and settle on as many messages, on the same server (see delivery.py)."""
    db = client[f"bench_ceiling_{uuid.uuid4().hex[:8]}"]
    try:
        await db_insert_ceiling(db, messages, config.planner.batch_size, time.monotonic() + CEILING_SECONDS)
        rate, _ = await db_claim_ceiling(db, config.dispatch.batch_size, config.dispatch.lease_s, CEILING_SECONDS)
        return rate
    finally:
        await bounded(lambda: client.drop_database(db.name), 60)


# Report


HEADER = (
    "fault",
    "messages",
    "sent",
    "expired",
    "failed",
    "other",
    "duplicate deliveries",
    "max lateness after end_at",
    "requests",
    "requests while down",
    "case took",
    "check",
)


def row(result: CaseResult) -> tuple[str, ...]:
    counts = result.counts
    other = sum(n for status, n in counts.items() if status not in ("sent", "expired", "failed"))
    down = "-" if not result.down_s else f"{result.requests_down:,} in {result.down_s:.1f}s"
    problems = result.problems()
    check = "PASS" if not problems else "FAIL: " + ", ".join(problems)
    if result.duplicates and not problems:
        check += " (duplicates: each after a timeout, documented)"
    return (
        result.name,
        f"{result.messages:,}",
        f"{counts.get('sent', 0):,}",
        f"{counts.get('expired', 0):,}",
        f"{counts.get('failed', 0):,}",
        f"{other:,}",
        f"{result.duplicates:,}",
        f"{result.lateness_s:.3f}s",
        f"{result.requests:,}",
        down,
        f"{result.done_s:.1f}s",
        check,
    )


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    for r in [HEADER, *rows]:
        cells = [r[0].ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(r[1:-1], widths[1:-1], strict=True))]
        say("  ".join([*cells, r[-1]]))


def print_notes(results: list[CaseResult], ceiling: Rate | None) -> None:
    say(
        "Herald: `herald serve` per case, config.yaml's defaults except "
        + ", ".join(f"{key.removeprefix('HERALD_').lower()}={value}" for key, value in HERALD_SETTINGS.items())
    )
    say(
        f"mailings end {RECOVERING_END_S:.0f}s after creation ({OUTLASTING_END_S:.0f}s for the outage that "
        "outlasts it); a case stops when every message is final, or "
        f"{AFTER_END_S:.0f}s after the end. 'case took': from setting the fault to that stop."
    )
    say(
        "requests while down: those the emulator received while the fault was in force (until the bench lifted "
        f"it, {BURST_S:.0f}s after it set it for a burst; for an outage never lifted, until the case stopped). They "
        "include the first wave: up to dispatch.start_concurrency (10) requests, then a few more as the limit learns,"
        " leave before failures open the breaker."
    )
    say(
        "duplicate deliveries: extra acceptances of a msgId at the emulator; each must follow a request whose "
        "answer Herald lost (timeout or connection, from its log), the documented case 1 of the delivery guarantee."
    )
    control = next((r for r in results if not r.case.faults and r.final), None)
    if control is not None and control.done_s > 0:
        say(
            f"Herald without faults: {control.messages:,} messages final in {control.done_s:.1f}s "
            f"({control.messages / control.done_s:,.0f} msg/s, including planning and polling)"
        )
    poison = next((r for r in results if "messages" in r.case.faults), None)
    if poison is not None:
        healthy = poison.messages - len(poison.case.faults["messages"])
        say(
            f"poison messages among healthy ones: {len(poison.case.faults['messages'])} messages failed "
            f"{POISON_FAILURES} times each; the {healthy:,} healthy ones were all delivered in "
            + ("-" if poison.healthy_s is None else f"{poison.healthy_s:.1f}s")
            + (
                ""
                if control is None or control.healthy_s is None
                else f" (without faults: all {control.messages:,} in {control.healthy_s:.1f}s)"
            )
        )
    if ceiling is not None:
        say(
            f"database ceiling (bare PyMongo, Herald's claim and settle, same FerretDB): {ceiling.per_s:,.0f} msg/s "
            f"({ceiling.count:,} in {ceiling.seconds:.1f}s)"
        )


# Wiring


async def bench(args: argparse.Namespace, log_dir: Path) -> None:
    all_cases = cases(args.messages)
    chosen = {name: case for name, case in all_cases.items() if not args.only or name in args.only}
    config = load_config(env={})
    with mongo_base(log_dir) as (base_url, _):
        client: MongoClient = AsyncMongoClient(base_url, tz_aware=True, timeoutMS=60_000)
        try:
            say(f"ceiling: bare claim + settle of {args.messages:,} messages ...")
            ceiling = await claim_settle_ceiling(client, config, args.messages)
            results = []
            for name, case in chosen.items():
                say(f"case: {name} ...")
                result = await run_case(name, case, client, base_url, config, args.messages, log_dir)
                say(f"  {result.counts} in {result.done_s:.1f}s; {result.requests:,} requests")
                results.append(result)
        finally:
            await client.close()
    say("")
    print_table([row(result) for result in results])
    say("")
    print_notes(results, ceiling)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200, help="messages per mailing (default 200)")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        choices=list(cases(1)),
        help="run only these cases, by their names in the table",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep Herald's and the emulator's logs")
    args = parser.parse_args()
    if not 1 <= args.messages <= 5000:
        parser.error("--messages must be between 1 and 5000: each case must play out within seconds")
    return args


def main() -> None:
    args = parse_args()
    run_with_logs("herald-bench-faults-", lambda log_dir: bench(args, log_dir), args.keep_logs)


if __name__ == "__main__":
    main()
