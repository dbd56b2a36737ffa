"""Herald's own API under load while a large mailing delivers at full speed, next to the database's ceiling.

Everything runs on 127.0.0.1: a FerretDB of its own (unless HERALD_MONGO_URL is set), the emulator and
`herald serve` (the default path: the API and the workers in one process, as `scripts/run` starts them) as
subprocesses. N clients are inserted directly and one mailing to all of them is created through the API. While
it delivers, four bounded phases, each next to the same work done by bare PyMongo on the same server at the same
moment (the database's ceiling):

- writes: `--writers` loops, each POST /api/v1/clients one after another; every new client joins the running
  mailing. The ceiling does the database work of one such request: the id sequence, the insert, the running
  mailings, the new message.
- statistics: `--readers` loops, each GET /api/v1/mailings/stats, then GET /api/v1/mailings/{id}/stats. The ceiling
  runs the same queries.
- many writers: `--many-writers` loops creating clients (half of them) and mailings (the other half; they start
  tomorrow, for a tag nobody has). Every answer must be 2xx or 4xx, and every id a distinct integer, client ids
  below 2**32 as message ids require.

Each phase reports the mailing's delivery rate during it, from the emulator: the mailing ran at full speed.

    .venv/bin/python bench/api_load.py [--clients 100000] [--phase-seconds 8] [--writers 20] [--readers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pymongo
from pymongo.errors import PyMongoError

# The shared machinery of the benchmarks lives in delivery.py.
from delivery import (
    CONTROL_TIMEOUT,
    HOST,
    Child,
    Database,
    bounded,
    child_env,
    create_mailing,
    mongo_base,
    probe_stats,
    run_with_logs,
    say,
    seeded_database,
    start_probe,
    wait_http_ok,
)
from herald.config import load_config
from herald.localdb import free_port
from herald.probe.app import make_token
from isolation import percentile, verdict, wait_planned

TARGET_WRITES_PER_S = 300.0
TARGET_WRITE_P99_MS = 100.0
TARGET_STATS_P95_MS = 100.0
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
MAX_CLIENT_ID = 2**32


@dataclass
class Sample:
    """Latencies of one kind of call during a phase, and how its answers went."""

    ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0

    def add(self, ms: float, status: int | None) -> None:
        self.ms.append(ms)
        if status is None:
            self.errors += 1
        else:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    @property
    def rate(self) -> float:
        return len(self.ms) / self.seconds if self.seconds else 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500) + self.errors

    def latency(self, share: float) -> float:
        return percentile(self.ms, share) if self.ms else float("nan")


async def timed(sample: Sample, call: Callable[[], Awaitable[int]]) -> None:
    started = time.perf_counter()
    try:
        status: int | None = await call()
    except (aiohttp.ClientError, TimeoutError, PyMongoError):
        status = None
    sample.add((time.perf_counter() - started) * 1000, status)


async def loops(count: int, seconds: float, body: Callable[[int], Awaitable[None]]) -> float:
    """`count` loops calling body(n) back to back for `seconds`; returns how long they really ran."""
    numbers = itertools.count()
    stop_at = time.monotonic() + seconds
    started = time.monotonic()

    async def loop() -> None:
        while time.monotonic() < stop_at:
            await body(next(numbers))

    await asyncio.gather(*(loop() for _ in range(count)))
    return time.monotonic() - started


class Load:
    """Herald's calls and their bare-database twins, against one mailing."""

    def __init__(self, session: aiohttp.ClientSession, api_url: str, db: Database, mailing_id: int) -> None:
        self._session = session
        self._api = f"{api_url}/api/v1"
        self._db = db
        self._mailing_id = mailing_id
        self.created: dict[str, list[Any]] = {"clients": [], "mailings": []}
        self._phones = itertools.count()

    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        async with self._session.request(method, f"{self._api}{path}", json=body, timeout=REQUEST_TIMEOUT) as response:
            payload = await response.json(content_type=None)
            return response.status, payload

    async def post_client(self, tag: str = "load") -> int:
        status, payload = await self._send(
            "POST", "/clients", {"phone": f"7903{next(self._phones):07d}", "timezone": "Europe/Moscow", "tag": tag}
        )
        if status == 201:
            self.created["clients"].append(payload["id"])
        return status

    async def post_mailing(self) -> int:
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        status, payload = await self._send(
            "POST",
            "/mailings",
            {
                "text": "Load bench",
                "start_at": tomorrow.isoformat(),
                "end_at": (tomorrow + timedelta(hours=1)).isoformat(),
                "filter": {"tags": ["nobody"]},
            },
        )
        if status == 201:
            self.created["mailings"].append(payload["id"])
        return status

    async def all_stats(self) -> int:
        return (await self._send("GET", "/mailings/stats"))[0]

    async def mailing_stats(self) -> int:
        return (await self._send("GET", f"/mailings/{self._mailing_id}/stats"))[0]

    async def bare_client(self, n: int) -> int:
        """What POST /clients asks of the database: a block of ids every hundred clients, the insert, the running
        mailings, the new message. Ids and phones are far from Herald's own: these clients exist only for the
        ceiling."""
        now = datetime.now(UTC)
        with pymongo.timeout(REQUEST_TIMEOUT.total):
            if n % 100 == 0:
                await self._db.counters.find_one_and_update(
                    {"_id": "bench_ceiling"}, {"$inc": {"seq": 100}}, upsert=True
                )
            client_id = 3 * 10**9 + n
            await self._db.clients.insert_one(
                {
                    "_id": client_id,
                    "phone": f"7904{n:07d}",
                    "operator_code": "904",
                    "tag": "ceiling",
                    "timezone": "Europe/Moscow",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            await self._db.mailings.find(
                {"deleted_at": None, "start_at": {"$lte": now}, "end_at": {"$gt": now}}
            ).to_list()
            await self._db.messages.insert_one(
                {
                    "_id": (self._mailing_id << 32) | client_id,
                    "mailing_id": self._mailing_id,
                    "client_id": client_id,
                    "status": "cancelled",
                    "created_at": now,
                    "sent_at": None,
                    "attempts": 0,
                    "last_error": None,
                    "due_at": None,
                    "lease_owner": None,
                }
            )
        return 201

    async def bare_all_stats(self) -> int:
        """What GET /mailings/stats asks: a page of mailings, their counts by status, the overall counts."""
        with pymongo.timeout(REQUEST_TIMEOUT.total):
            mailings = await self._db.mailings.find({"deleted_at": None}).sort("_id", 1).limit(51).to_list()
            ids = [m["_id"] for m in mailings]
            await self._counts({"$gte": min(ids), "$lte": max(ids)})
            await self._counts({"$gte": 0})
        return 200

    async def bare_mailing_stats(self) -> int:
        """What GET /mailings/{id}/stats asks: the mailing, its counts, a page of its messages."""
        first, last = self._mailing_id << 32, (self._mailing_id + 1) << 32
        with pymongo.timeout(REQUEST_TIMEOUT.total):
            await self._db.mailings.find_one({"_id": self._mailing_id, "deleted_at": None})
            await self._counts({"$gte": self._mailing_id, "$lte": self._mailing_id})
            await self._db.messages.find({"_id": {"$gt": first - 1, "$lt": last}}).sort("_id", 1).limit(51).to_list()
        return 200

    async def _counts(self, mailing_ids: dict[str, int]) -> None:
        """Messages by mailing and status for a range of mailing ids, as the statistics store counts them."""
        pipeline = [
            {"$match": {"mailing_id": mailing_ids}},
            {"$group": {"_id": {"mailing_id": "$mailing_id", "status": "$status"}, "n": {"$sum": 1}}},
        ]
        await (await self._db.messages.aggregate(pipeline)).to_list()


@dataclass
class Phase:
    name: str
    samples: dict[str, Sample] = field(default_factory=dict)
    delivered_per_s: float = 0.0


async def run_phase(
    name: str,
    seconds: float,
    session: aiohttp.ClientSession,
    probe_base: str,
    work: dict[str, tuple[int, Callable[[int], Awaitable[int]]]],
) -> Phase:
    """Run each kind of call in its own loops for `seconds`, all at once; measure delivery meanwhile."""
    say(f"phase: {name}, {seconds:.0f}s ...")
    phase = Phase(name, {kind: Sample() for kind in work})
    before = int((await probe_stats(session, probe_base))["unique_accepted"])
    started = time.monotonic()

    async def kind_loops(kind: str, count: int, call: Callable[[int], Awaitable[int]]) -> None:
        sample = phase.samples[kind]
        sample.seconds = await loops(count, seconds, lambda n: timed(sample, lambda: call(n)))

    await asyncio.gather(*(kind_loops(kind, count, call) for kind, (count, call) in work.items()))
    after = int((await probe_stats(session, probe_base))["unique_accepted"])
    phase.delivered_per_s = (after - before) / (time.monotonic() - started)
    return phase


def latency_row(
    label: str, herald: Sample, ceiling: Sample | None, share: float, target_ms: float, min_rate: float = 0.0
) -> tuple[str, str, str, str]:
    pct = f"p{share * 100:.0f}"

    def cells(sample: Sample) -> str:
        return f"{sample.rate:,.0f}/s, p50 {sample.latency(0.5):,.0f} ms, {pct} {sample.latency(share):,.0f} ms" + (
            f", {sample.server_errors} failed" if sample.server_errors else ""
        )

    ok = herald.latency(share) < target_ms and herald.rate >= min_rate and herald.server_errors == 0
    target = (f">= {min_rate:,.0f}/s, " if min_rate else "") + f"{pct} < {target_ms:,.0f} ms, no 5xx"
    return label, cells(herald), cells(ceiling) if ceiling else "", f"{target}: {verdict(ok)}"


def id_rows(load: Load, many: Phase) -> list[tuple[str, str, str, str]]:
    rows = []
    server_errors = sum(sample.server_errors for sample in many.samples.values())
    answers = sum(len(sample.ms) for sample in many.samples.values())
    rows.append(("  answers 5xx or failed", f"{server_errors} of {answers:,}", "", f"0: {verdict(server_errors == 0)}"))
    for kind, ids in load.created.items():
        integers = all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        unique = len(set(ids)) == len(ids)
        bound = kind != "clients" or all(0 < i < MAX_CLIENT_ID for i in ids)
        ok = integers and unique and bound and bool(ids)
        what = "unique integers" + (" below 2**32" if kind == "clients" else "")
        rows.append(
            (f"  {kind} ids", f"{len(ids):,} created, {len(set(ids)):,} distinct", "", f"{what}: {verdict(ok)}")
        )
    return rows


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("metric", "Herald", "ceiling (bare PyMongo: the same queries, same server, same moment)", "target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        say("  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]), row[3]]).rstrip())


async def measure(args: argparse.Namespace, log_dir: Path) -> None:
    config = load_config(env={})
    api_port = free_port()
    probe, probe_base = start_probe(log_dir)
    try:
        with mongo_base(log_dir) as (base_url, _):
            async with seeded_database(base_url, "bench_api", args.clients) as (db, mongo_url):
                env = child_env(
                    {
                        "HERALD_MONGO_URL": mongo_url,
                        "HERALD_SENDER_URL": f"{probe_base}/v1",
                        "HERALD_SENDER_TOKEN": make_token(config.probe.jwt_secret),
                        "HERALD_HTTP_HOST": HOST,
                        "HERALD_HTTP_PORT": str(api_port),
                    }
                )
                await run_load(args, env, db, probe, probe_base, f"http://{HOST}:{api_port}", log_dir)
    finally:
        probe.stop()


async def run_load(
    args: argparse.Namespace,
    env: dict[str, str],
    db: Database,
    probe: Child,
    probe_base: str,
    api_url: str,
    log_dir: Path,
) -> None:
    herald = Child("herald-api", "api", env, log_dir)
    worker: Child | None = None
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(timeout=CONTROL_TIMEOUT, connector=connector) as session:
            await wait_http_ok(session, f"{probe_base}/_probe/stats", probe.check_alive)
            await wait_http_ok(session, f"{api_url}/readyz", herald.check_alive)
            worker_port = free_port()
            worker = Child("herald-worker", "worker", {**env, "HERALD_HTTP_WORKER_PORT": str(worker_port)}, log_dir)
            await wait_http_ok(session, f"http://{HOST}:{worker_port}/readyz", worker.check_alive)
            mailing_id, _ = await create_mailing(session, api_url, "API load bench")
            await wait_planned(db, mailing_id, worker)
            load = Load(session, api_url, db, mailing_id)
            s = args.phase_seconds
            writes = await run_phase(
                "writes", s, session, probe_base, {"POST /clients": (args.writers, lambda n: load.post_client())}
            )
            bare_writes = await run_phase(
                "writes, ceiling", s, session, probe_base, {"bare": (args.writers, load.bare_client)}
            )
            stats = await run_phase(
                "statistics",
                s,
                session,
                probe_base,
                {
                    "GET /mailings/stats": (args.readers, lambda n: load.all_stats()),
                    "GET /mailings/{id}/stats": (args.readers, lambda n: load.mailing_stats()),
                },
            )
            bare_stats = await run_phase(
                "statistics, ceiling",
                s,
                session,
                probe_base,
                {
                    "all": (args.readers, lambda n: load.bare_all_stats()),
                    "one": (args.readers, lambda n: load.bare_mailing_stats()),
                },
            )
            half = args.many_writers // 2
            many = await run_phase(
                "many writers",
                s,
                session,
                probe_base,
                {
                    "clients": (args.many_writers - half, lambda n: load.post_client("many")),
                    "mailings": (half, lambda n: load.post_mailing()),
                },
            )
            herald.check_alive()
            unsent = await bounded(
                lambda: db.messages.count_documents(
                    {"mailing_id": mailing_id, "status": {"$in": ["pending", "sending"]}}
                )
            )
    finally:
        if worker is not None:
            worker.stop()
        herald.stop()
    say("")
    print_table(
        [
            latency_row(
                f"POST /clients, {args.writers} at once",
                writes.samples["POST /clients"],
                bare_writes.samples["bare"],
                0.99,
                TARGET_WRITE_P99_MS,
                TARGET_WRITES_PER_S,
            ),
            latency_row(
                f"GET /mailings/stats, {args.readers} at once",
                stats.samples["GET /mailings/stats"],
                bare_stats.samples["all"],
                0.95,
                TARGET_STATS_P95_MS,
            ),
            latency_row(
                f"GET /mailings/{{id}}/stats, {args.readers} at once",
                stats.samples["GET /mailings/{id}/stats"],
                bare_stats.samples["one"],
                0.95,
                TARGET_STATS_P95_MS,
            ),
            (
                f"{args.many_writers} writers: clients and mailings",
                f"{sum(len(x.ms) for x in many.samples.values()) / s:,.0f} requests/s",
                "",
                "",
            ),
            *id_rows(load, many),
        ]
    )
    say("")
    say(
        "the mailing's delivery during each phase (emulator, unique acceptances): "
        + ", ".join(f"{p.name} {p.delivered_per_s:,.0f} msg/s" for p in (writes, bare_writes, stats, bare_stats, many))
    )
    say(
        f"messages of the mailing still pending or sending after the last phase: "
        f"{'?' if unsent is None else f'{unsent:,}'} (more than 0: it was still delivering throughout)"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100_000, help="clients, hence messages (default 100000)")
    parser.add_argument("--phase-seconds", type=float, default=8, help="length of each phase (default 8)")
    parser.add_argument("--writers", type=int, default=20, help="concurrent POST /clients (default 20)")
    parser.add_argument(
        "--readers", type=int, default=4, help="concurrent readers of each statistics endpoint (default 4)"
    )
    parser.add_argument(
        "--many-writers",
        type=int,
        default=50,
        help="concurrent writers of clients and mailings in the last phase (default 50)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep Herald's and the emulator's logs")
    args = parser.parse_args()
    if not 1 <= args.clients <= 1_000_000 or not 1 <= args.phase_seconds <= 120:
        parser.error("--clients must be 1 to 1000000, --phase-seconds 1 to 120")
    return args


def main() -> None:
    args = parse_args()
    run_with_logs("herald-bench-api-", lambda log_dir: measure(args, log_dir), args.keep_logs)


if __name__ == "__main__":
    main()
