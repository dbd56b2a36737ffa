"""Is Herald's own API isolated from a dead external API? Latency of its reads and writes, the worker's memory,
and the requests that still reach the dead API, while a large mailing is in progress.

Everything runs on 127.0.0.1, in the production shape: a FerretDB of its own (unless HERALD_MONGO_URL is set),
the emulator, `herald api` and `herald worker` as separate subprocesses with config.yaml's defaults. N clients
are inserted directly and one mailing to all of them is created through the API. Then three bounded phases:

- healthy: the emulator answers, delivery runs (for comparison);
- API hangs: every request is held far beyond Herald's timeout, then answered 503;
- API down: every request is answered 503 at once.

In each phase the bench calls GET /api/v1/mailings/stats, POST /api/v1/clients and PATCH /api/v1/clients/{id}
in paced rounds, and times the database's own ceiling for the same work in the same rounds (bare PyMongo: the
stats queries, an insert, an update). It samples the RSS of both Herald processes every second and counts the
requests the emulator received, next to the breaker's changes from the worker's log.

    .venv/bin/python bench/isolation.py [--messages N] [--phase-seconds S] [--healthy-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pymongo
from pymongo.errors import PyMongoError

# The shared machinery of the benchmarks lives in delivery.py, and the emulator's ledger helpers in faults.py.
from delivery import (
    CONTROL_TIMEOUT,
    HOST,
    Child,
    Database,
    bounded,
    child_env,
    create_mailing,
    mongo_base,
    proc_field_kb,
    run_with_logs,
    say,
    seeded_database,
    start_probe,
    wait_http_ok,
)
from faults import Arrival, arrivals, log_entries, put_faults
from herald.config import Config, DispatchConfig, load_config
from herald.localdb import free_port
from herald.probe.app import make_token

TARGET_P99_MS = 50.0
# Memory is flat if the worker's RSS never grows by more than this over its value when the fault began.
TARGET_RSS_GROWTH_MB = 20.0
# The hang: longer than Herald's 10 s sender timeout, and then a 503, so no hung request is ever accepted.
HANG_MS = 30_000
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)
RSS_EVERY_S = 1.0
PLANNING_TIMEOUT_S = 120.0


@dataclass
class Phase:
    name: str
    faults: dict[str, Any]
    seconds: float
    started: datetime | None = None
    ended: datetime | None = None
    unsent_at_end: int | None = None  # messages still pending or sending when the phase ended

    @property
    def is_fault(self) -> bool:
        return bool(self.faults.get("outage"))

    @property
    def lasted_s(self) -> float:
        assert self.started is not None and self.ended is not None
        return (self.ended - self.started).total_seconds()

    def holds(self, at: datetime) -> bool:
        return self.started is not None and self.ended is not None and self.started <= at < self.ended


def phases(healthy_s: float, fault_s: float) -> list[Phase]:
    return [
        Phase("healthy", {"outage": False, "latency_ms": 0}, healthy_s),
        Phase("API hangs", {"outage": True, "latency_ms": HANG_MS}, fault_s),
        Phase("API down", {"outage": True, "latency_ms": 0}, fault_s),
    ]


# Timed operations: Herald's API, and the database's own ceiling for the same work


@dataclass
class Timings:
    ms: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))  # (phase, op)
    errors: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    async def time(self, phase: str, op: str, call: Callable[[], Awaitable[bool]]) -> None:
        started = time.perf_counter()
        try:
            ok = await call()
        except (aiohttp.ClientError, TimeoutError, PyMongoError):
            ok = False
        self.ms[(phase, op)].append((time.perf_counter() - started) * 1000)
        if not ok:
            self.errors[(phase, op)] += 1


HERALD_OPS = ("GET /mailings/stats", "POST /clients", "PATCH /clients/{id}")
CEILING_OPS = ("stats queries", "insert_one", "update_one")


class Operations:
    """One round: each of Herald's calls, then the bare database work it stands for."""

    def __init__(self, session: aiohttp.ClientSession, api_url: str, db: Database, clients: int) -> None:
        self._session = session
        self._api = f"{api_url}/api/v1"
        self._db = db
        self._clients = clients
        self._round = 0

    async def run(self, timings: Timings, phase: str, stop_at: float) -> None:
        """One round, cut short at `stop_at`: a slow database must not stretch the phase by a whole round."""
        self._round += 1
        n = self._round
        # Seeded clients are 1..clients; the two writes touch different ones so neither waits for the other.
        for op, call in zip(
            HERALD_OPS + CEILING_OPS,
            (
                self.get_stats,
                lambda: self.post_client(n),
                lambda: self.patch_client(n),
                self.bare_stats,
                lambda: self.bare_insert(n),
                lambda: self.bare_update(n),
            ),
            strict=True,
        ):
            if time.monotonic() >= stop_at:
                return
            await timings.time(phase, op, call)

    async def get_stats(self) -> bool:
        async with self._session.get(f"{self._api}/mailings/stats", timeout=REQUEST_TIMEOUT) as response:
            await response.read()
            return response.status == 200

    async def post_client(self, n: int) -> bool:
        body = {"phone": f"7901{n:07d}", "timezone": "Europe/Moscow", "tag": "isolation"}
        async with self._session.post(f"{self._api}/clients", json=body, timeout=REQUEST_TIMEOUT) as response:
            await response.read()
            return response.status == 201

    async def patch_client(self, n: int) -> bool:
        client_id = 1 + (2 * n) % self._clients
        async with self._session.patch(
            f"{self._api}/clients/{client_id}", json={"tag": f"round-{n}"}, timeout=REQUEST_TIMEOUT
        ) as response:
            await response.read()
            return response.status == 200

    async def bare_stats(self) -> bool:
        """What GET /mailings/stats asks the database: a page of mailings, their counts, the overall counts."""
        with pymongo.timeout(REQUEST_TIMEOUT.total):
            mailings = await self._db.mailings.find({"deleted_at": None}).sort("_id", 1).limit(51).to_list()
            ids = [m["_id"] for m in mailings]
            for mailing_ids in ({"$gte": min(ids), "$lte": max(ids)}, {"$gte": 0}):
                pipeline = [
                    {"$match": {"mailing_id": mailing_ids}},
                    {"$group": {"_id": {"mailing_id": "$mailing_id", "status": "$status"}, "n": {"$sum": 1}}},
                ]
                await (await self._db.messages.aggregate(pipeline)).to_list()
        return True

    async def bare_insert(self, n: int) -> bool:
        # Ids and phones far from Herald's own: these clients exist only for the ceiling.
        now = datetime.now(UTC)
        with pymongo.timeout(REQUEST_TIMEOUT.total):
            await self._db.clients.insert_one(
                {
                    "_id": 10**8 + n,
                    "phone": f"7902{n:07d}",
                    "operator_code": "902",
                    "tag": "ceiling",
                    "timezone": "Europe/Moscow",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        return True

    async def bare_update(self, n: int) -> bool:
        client_id = 2 + (2 * n) % self._clients
        with pymongo.timeout(REQUEST_TIMEOUT.total):
            await self._db.clients.update_one(
                {"_id": client_id}, {"$set": {"tag": f"round-{n}", "updated_at": datetime.now(UTC)}}
            )
        return True


async def run_phase(
    phase: Phase, ops: Operations, timings: Timings, session: aiohttp.ClientSession, probe_base: str, round_s: float
) -> None:
    """Set the phase's faults, then run a round every `round_s` (or back to back if a round takes longer)."""
    await put_faults(session, probe_base, phase.faults)
    phase.started = datetime.now(UTC)
    say(f"phase: {phase.name}, {phase.seconds:.0f}s ...")
    stop_at = time.monotonic() + phase.seconds
    while (now := time.monotonic()) < stop_at:
        await ops.run(timings, phase.name, stop_at)
        await asyncio.sleep(max(0.0, now + round_s - time.monotonic()))
    phase.ended = datetime.now(UTC)


# Memory


@dataclass
class RssSample:
    at: datetime
    worker_kb: int | None
    api_kb: int | None


async def sample_rss(worker_pid: int, api_pid: int, into: list[RssSample]) -> None:
    while True:
        into.append(RssSample(datetime.now(UTC), proc_field_kb(worker_pid, "VmRSS"), proc_field_kb(api_pid, "VmRSS")))
        await asyncio.sleep(RSS_EVERY_S)


@dataclass
class Rss:
    start_mb: float
    peak_mb: float
    end_mb: float

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.start_mb


def rss_over(samples: list[RssSample], start: datetime, end: datetime, which: str) -> Rss | None:
    values = [kb / 1024 for s in samples if start <= s.at <= end and (kb := getattr(s, which)) is not None]
    return Rss(values[0], max(values), values[-1]) if values else None


# Herald


def breaker_changes(log_path: Path) -> list[tuple[datetime, str]]:
    """(when, new state) of each change of the worker's circuit breaker, from its JSON log."""
    return [
        (datetime.fromisoformat(entry["ts"]), str(entry["breaker"]))
        for entry in log_entries(log_path)
        if str(entry.get("msg", "")).startswith("circuit breaker ")
    ]


def trials_allowed(seconds: float, dispatch: DispatchConfig) -> int:
    """The most requests a breaker that stays open lets through in `seconds` from its opening: its trials after
    each pause, the pause doubling up to its longest (README, Backpressure)."""
    rounds, elapsed, pause = 0, 0.0, dispatch.breaker_open_s
    while elapsed + pause <= seconds:
        rounds, elapsed, pause = rounds + 1, elapsed + pause, min(2 * pause, dispatch.breaker_max_open_s)
    return rounds * dispatch.breaker_trials


def herald_env(config: Config, mongo_url: str, probe_base: str, api_port: int, worker_port: int) -> dict[str, str]:
    return child_env(
        {
            "HERALD_MONGO_URL": mongo_url,
            "HERALD_SENDER_URL": f"{probe_base}/v1",
            "HERALD_SENDER_TOKEN": make_token(config.probe.jwt_secret),
            "HERALD_HTTP_HOST": HOST,
            "HERALD_HTTP_PORT": str(api_port),
            "HERALD_HTTP_WORKER_PORT": str(worker_port),
            "HERALD_LOG_FORMAT": "json",  # the worker's breaker changes are read back from it
        }
    )


async def wait_planned(db: Database, mailing_id: int, worker: Child) -> None:
    deadline = time.monotonic() + PLANNING_TIMEOUT_S
    while time.monotonic() < deadline:
        worker.check_alive()
        mailing = await bounded(lambda: db.mailings.find_one({"_id": mailing_id}, {"planned_at": 1}))
        if mailing and mailing.get("planned_at"):
            return
        await asyncio.sleep(0.25)
    raise RuntimeError(f"the mailing was not planned within {PLANNING_TIMEOUT_S:.0f}s")


async def unsent(db: Database, mailing_id: int) -> int | None:
    count: int | None = await bounded(
        lambda: db.messages.count_documents({"mailing_id": mailing_id, "status": {"$in": ["pending", "sending"]}})
    )
    return count


# Report


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


@dataclass
class Report:
    phases: list[Phase]
    timings: Timings
    rss: list[RssSample]
    seen: list[Arrival]
    breaker: list[tuple[datetime, str]]
    dispatch: DispatchConfig
    rows: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def faults(self) -> list[Phase]:
        return [p for p in self.phases if p.is_fault]

    def add(self, metric: str, cells: list[str], target: str = "") -> None:
        self.rows.append((metric, *cells, target))

    def latency_rows(self, ops: tuple[str, ...], judged: bool) -> None:
        for op in ops:
            cells, worst = [], 0.0
            for phase in self.phases:
                values = self.timings.ms.get((phase.name, op), [])
                if not values:
                    cells.append("-")
                    continue
                p99 = percentile(values, 0.99)
                cells.append(f"{percentile(values, 0.5):.0f} / {p99:.0f}")
                worst = max(worst, p99) if phase.is_fault else worst
            target = f"p99 < {TARGET_P99_MS:.0f} ms in faults: {verdict(worst < TARGET_P99_MS)}" if judged else ""
            self.add(f"{op}, p50 / p99 ms" if judged else f"  DB ceiling: {op}, p50 / p99 ms", cells, target)

    def rss_rows(self) -> None:
        fault_start, fault_end = self.faults[0].started, self.faults[-1].ended
        assert fault_start is not None and fault_end is not None
        for which, label in (
            ("worker_kb", "worker RSS MB, start / peak / end"),
            ("api_kb", "API process RSS MB, start / peak / end"),
        ):
            cells = []
            for phase in self.phases:
                assert phase.started is not None and phase.ended is not None
                rss = rss_over(self.rss, phase.started, phase.ended, which)
                cells.append("-" if rss is None else f"{rss.start_mb:.0f} / {rss.peak_mb:.0f} / {rss.end_mb:.0f}")
            whole = rss_over(self.rss, fault_start, fault_end, which)
            target = ""
            if which == "worker_kb" and whole is not None:
                target = (
                    f"flat: +{whole.growth_mb:.1f} MB over the faults, < {TARGET_RSS_GROWTH_MB:.0f}: "
                    f"{verdict(whole.growth_mb < TARGET_RSS_GROWTH_MB)}"
                )
            self.add(label, cells, target)

    def dead_api_rows(self) -> None:
        opened = next((at for at, state in self.breaker if state == "open" and self.faults[0].holds(at)), None)
        cells, after_open = [], []
        for phase in self.phases:
            assert phase.started is not None and phase.ended is not None
            count = sum(phase.holds(a.at) for a in self.seen)
            cells.append(f"{count:,} ({count / phase.lasted_s:.1f}/s)")
            if phase.is_fault and opened is not None:
                after_open.extend(a for a in self.seen if phase.holds(a.at) and a.at >= opened)
        self.add("requests reaching the external API", cells)
        if opened is None:
            self.add("  after the breaker opened", ["-"] * len(self.phases), "the breaker never opened: FAIL")
            return
        fault_end = self.faults[-1].ended
        assert fault_end is not None
        allowed = trials_allowed((fault_end - opened).total_seconds(), self.dispatch)
        per_phase = [f"{sum(p.holds(a.at) for a in after_open):,}" if p.is_fault else "-" for p in self.phases]
        self.add(
            "  of which after the breaker opened",
            per_phase,
            f"{len(after_open)}, <= {allowed} (its trials after each pause): {verdict(len(after_open) <= allowed)}",
        )

    def build(self) -> list[tuple[str, ...]]:
        self.latency_rows(HERALD_OPS, judged=True)
        self.latency_rows(CEILING_OPS, judged=False)
        self.rss_rows()
        self.dead_api_rows()
        self.add(
            "messages pending or sending at the end",
            ["?" if p.unsent_at_end is None else f"{p.unsent_at_end:,}" for p in self.phases],
        )
        return self.rows


def print_table(phase_names: list[str], rows: list[tuple[str, ...]]) -> None:
    header = ("metric", *phase_names, "target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        cells = [r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:-1], widths[1:-1], strict=True))]
        say("  ".join([*cells, r[-1]]).rstrip())


def print_notes(report: Report, args: argparse.Namespace) -> None:
    first = report.phases[1].started
    assert first is not None
    changes = ", ".join(f"{state} +{(at - first).total_seconds():.1f}s" for at, state in report.breaker if at >= first)
    say(f"breaker changes from the start of the hang (worker's log): {changes or 'none'}")
    say(
        f"{args.messages:,} clients, one mailing to all of them; phases: healthy {args.healthy_seconds:.0f}s, then "
        f"{args.phase_seconds:.0f}s each of the API hanging ({HANG_MS / 1000:.0f}s, then 503) and down (503 at "
        f"once); a round of the six timed operations every {args.round_seconds}s, or back to back when one takes "
        "longer; config.yaml's defaults (sender timeout 10s, breaker pause 2s doubling to 60s, concurrency 200)"
    )
    rounds = ", ".join(f"{p.name} {len(report.timings.ms.get((p.name, HERALD_OPS[0]), []))}" for p in report.phases)
    say(f"rounds timed (samples per percentile): {rounds}")
    errors = {key: n for key, n in report.timings.errors.items() if n}
    if errors:
        say("errors: " + ", ".join(f"{op} in {phase}: {n}" for (phase, op), n in errors.items()))
    say(f"latencies are the bench's own, client side, on {os.cpu_count()} cores shared by every process here")


# Wiring


async def measure(args: argparse.Namespace, log_dir: Path) -> None:
    config = load_config(env={})
    api_port, worker_port = free_port(), free_port()
    probe, probe_base = start_probe(log_dir)
    try:
        with mongo_base(log_dir) as (base_url, _):
            async with seeded_database(base_url, "bench_isolation", args.messages) as (db, mongo_url):
                env = herald_env(config, mongo_url, probe_base, api_port, worker_port)
                report = await run_herald(
                    args, config.dispatch, env, db, probe, probe_base, f"http://{HOST}:{api_port}", worker_port,
                    log_dir,
                )  # fmt: skip
    finally:
        probe.stop()
    say("")
    print_table([p.name for p in report.phases], report.build())
    say("")
    print_notes(report, args)


async def run_herald(
    args: argparse.Namespace,
    dispatch: DispatchConfig,
    env: dict[str, str],
    db: Database,
    probe: Child,
    probe_base: str,
    api_url: str,
    worker_port: int,
    log_dir: Path,
) -> Report:
    all_phases = phases(args.healthy_seconds, args.phase_seconds)
    timings = Timings()
    rss: list[RssSample] = []
    api = Child("herald-api", "api", env, log_dir)
    worker: Child | None = None
    sampler: asyncio.Task[None] | None = None
    try:
        async with aiohttp.ClientSession(timeout=CONTROL_TIMEOUT) as session:
            await wait_http_ok(session, f"{probe_base}/_probe/stats", probe.check_alive)
            # The worker starts once the API has created the indexes: FerretDB 1.x drops the connection of a
            # createIndexes that races another process's, and the worker that sent it exits at start.
            await wait_http_ok(session, f"{api_url}/readyz", api.check_alive)
            worker = Child("herald-worker", "worker", env, log_dir)
            await wait_http_ok(session, f"http://{HOST}:{worker_port}/readyz", worker.check_alive)
            sampler = asyncio.create_task(sample_rss(worker.pid, api.pid, rss))
            mailing_id, _ = await create_mailing(session, api_url, "Isolation bench")
            await wait_planned(db, mailing_id, worker)
            ops = Operations(session, api_url, db, args.messages)
            for phase in all_phases:
                await run_phase(phase, ops, timings, session, probe_base, args.round_seconds)
                api.check_alive()
                worker.check_alive()
                phase.unsent_at_end = await unsent(db, mailing_id)
            await asyncio.to_thread(worker.stop)
            # A request held during the hang is recorded when the emulator answers it: wait for the last ones.
            hang_ended = all_phases[1].ended
            assert hang_ended is not None
            wait_s = (hang_ended + timedelta(milliseconds=HANG_MS + 1000) - datetime.now(UTC)).total_seconds()
            if wait_s > 0:
                say(f"waiting {wait_s:.0f}s for the emulator to answer the requests held during the hang ...")
                await asyncio.sleep(wait_s)
            seen = await arrivals(session, probe_base)
    finally:
        if sampler is not None:
            sampler.cancel()
        if worker is not None:
            worker.stop()
        api.stop()
    assert worker is not None
    return Report(all_phases, timings, rss, seen, breaker_changes(worker.log_path), dispatch)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=4000, help="clients, hence messages (default 4000)")
    parser.add_argument("--phase-seconds", type=float, default=60, help="length of each fault phase (default 60)")
    parser.add_argument("--healthy-seconds", type=float, default=20, help="length of the healthy phase (default 20)")
    parser.add_argument(
        "--round-seconds",
        type=float,
        default=0.25,
        help="a round of the six timed operations starts this often (default 0.25)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep Herald's and the emulator's logs")
    args = parser.parse_args()
    if not 1 <= args.messages <= 100_000:
        parser.error("--messages must be between 1 and 100000")
    if not 1 <= args.phase_seconds <= 600 or not 1 <= args.healthy_seconds <= 600:
        parser.error("phases last between 1 and 600 seconds")
    return args


def main() -> None:
    args = parse_args()
    run_with_logs("herald-bench-isolation-", lambda log_dir: measure(args, log_dir), args.keep_logs)


if __name__ == "__main__":
    main()
