"""End-to-end delivery throughput of Herald, printed next to the raw ceilings of the emulator and the database.

Everything runs on 127.0.0.1: a FerretDB of its own (unless HERALD_MONGO_URL is set), the emulator and Herald as
subprocesses (Herald in this process with --in-process). N clients are inserted directly; then the ceilings are
timed without Herald (a bare aiohttp client against the emulator, a bare PyMongo loop against the database);
then one mailing is created through Herald's API and the run measures planning, delivery, duplicates and the
worker's peak RSS. The run stops by itself: when everything is delivered, when nothing moves for --stall-seconds,
or at --max-seconds, printing what it has.

    .venv/bin/python bench/delivery.py [--clients N] [--concurrency C] [--batch-size B] [--max-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pymongo
from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from herald.app import create_app
from herald.config import Config, load_config
from herald.localdb import REPO, LocalFerretDB, free_port
from herald.probe.app import make_token
from herald.store.db import INDEXES

Database = AsyncDatabase[dict[str, Any]]
MongoClient = AsyncMongoClient[dict[str, Any]]

HOST = "127.0.0.1"
TEXT = "Benchmark: spring sale, -20% today"
SEED_BATCH = 5000
POLL_S = 0.25
# A poll that waits longer than this means the database has stopped answering, not that it is slow.
POLL_TIMEOUT_S = 5.0
# The closing count may scan the whole collection on FerretDB while Herald is still busy with it.
FINAL_COUNT_TIMEOUT_S = 60.0
CONTROL_TIMEOUT = aiohttp.ClientTimeout(total=30)
# The raw emulator run uses ids far above any of Herald's, so it can never be mistaken for Herald's traffic.
CEILING_ID_BASE = 2**62
# The first claim round of the database ceiling: large enough that the round's fixed cost (two queries over the
# collection, which FerretDB scans) does not swamp it, small enough to stay near the time limit on a slow server.
CLAIM_PROBE_BATCH = 20
# One operation of a ceiling is never cut short (see db_claim_ceiling) unless the server is hopeless.
CEILING_OP_TIMEOUT_MS = 300_000
# Kept back from --max-seconds for stopping Herald and printing.
SHUTDOWN_RESERVE_S = 20
# Delivery targets: at most SMALL_RUN clients, and above; a larger run also keeps FLAT_SHARE of the smallest's rate.
SMALL_RUN = 20_000
TARGET_DELIVERY_SMALL = 1000.0
TARGET_DELIVERY_LARGE = 700.0
FLAT_SHARE = 0.7
TARGET_PLANNING = 5000.0
TARGET_RSS_MB = 200.0


# A line of Herald's text log at WARNING or above: "12:00:00.000 WARNING logger: message  key=value ...".
LOG_LINE = re.compile(r"^[\d:.]+ (?P<what>(?:WARNING|ERROR|CRITICAL)\s+\S+ .*?)(?:  |$)")


def say(text: str) -> None:
    print(text, flush=True)


# Processes and /proc


def proc_field_kb(pid: int, name: str) -> int | None:
    """A "Name:  123 kB" line of /proc/<pid>/status, or None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process, all its threads included."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces: count fields after its closing parenthesis (utime is field 14).
    rest = stat.rpartition(")")[2].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    # The caller's HERALD_* settings must not leak into the measured processes: the benchmark sets what it means.
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERALD_")}
    return {**env, "HERALD_LOG_LEVEL": "WARNING", "HERALD_LOG_FORMAT": "text", **overrides}


class Child:
    """`python -m herald <command>` started by us, its output in a log file; stopped by its own pid only."""

    def __init__(self, name: str, command: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "herald", command], env=dict(env), stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_summary(self, top: int = 5) -> str:
        """The most frequent warnings and errors of the log, counted: thousands of lines say little more."""
        counts: Counter[str] = Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            if match := LOG_LINE.match(line):
                counts[match["what"]] += 1
        return "\n".join(f"  {n:>7,} x {what}" for what, n in counts.most_common(top))

    def stop(self, timeout_s: float = 30) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def wait_http_ok(
    session: aiohttp.ClientSession, url: str, alive: Callable[[], None], timeout_s: float = 60
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive()
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s}s")


# Herald, in a subprocess or in this process


class HeraldRunner(Protocol):
    api_url: str
    pid: int | None  # None: Herald shares this process, so its memory cannot be told apart

    async def start(self, session: aiohttp.ClientSession) -> None: ...

    def check_alive(self) -> None: ...

    def log_summary(self) -> str: ...

    async def stop(self) -> None: ...


class HeraldSubprocess:
    def __init__(self, config: Config, log_dir: Path) -> None:
        port = free_port()
        self.api_url = f"http://{HOST}:{port}"
        env = child_env(
            {
                "HERALD_MONGO_URL": config.mongo.url,
                "HERALD_SENDER_URL": config.sender.url,
                "HERALD_SENDER_TOKEN": config.sender.token,
                "HERALD_SENDER_MAX_CONNECTIONS": str(config.sender.max_connections),
                "HERALD_HTTP_HOST": HOST,
                "HERALD_HTTP_PORT": str(port),
                "HERALD_DISPATCH_CONCURRENCY": str(config.dispatch.concurrency),
                "HERALD_DISPATCH_BATCH_SIZE": str(config.dispatch.batch_size),
                "HERALD_PLANNER_BATCH_SIZE": str(config.planner.batch_size),
            }
        )
        self._child = Child("herald", "serve", env, log_dir)
        self.pid: int | None = self._child.pid

    async def start(self, session: aiohttp.ClientSession) -> None:
        await wait_http_ok(session, f"{self.api_url}/readyz", self._child.check_alive)

    def check_alive(self) -> None:
        self._child.check_alive()

    def log_summary(self) -> str:
        return self._child.log_summary()

    async def stop(self) -> None:
        await asyncio.to_thread(self._child.stop)


class HeraldInProcess:
    def __init__(self, config: Config) -> None:
        warnings.filterwarnings("ignore", category=NotAppKeyWarning)
        self._runner = web.AppRunner(create_app(config), access_log=None)
        self._port = free_port()
        self.api_url = f"http://{HOST}:{self._port}"
        self.pid: int | None = None

    async def start(self, session: aiohttp.ClientSession) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self._port).start()
        await wait_http_ok(session, f"{self.api_url}/readyz", self.check_alive)

    def check_alive(self) -> None:
        pass

    def log_summary(self) -> str:
        return ""

    async def stop(self) -> None:
        try:
            # A database that stopped answering would hold the workers' shutdown forever.
            async with asyncio.timeout(60):
                await self._runner.cleanup()
        except TimeoutError:
            say("herald did not stop within 60s")


# Data


def client_doc(client_id: int, now: datetime) -> dict[str, Any]:
    # 7 + operator 900 + 7 digits: unique phones, and the operator code the store would derive.
    return {
        "_id": client_id,
        "phone": f"7900{client_id:07d}",
        "operator_code": "900",
        "tag": None,
        "timezone": "Europe/Moscow",
        "created_at": now,
        "updated_at": now,
    }


def message_doc(message_id: int, now: datetime) -> dict[str, Any]:
    return {
        "_id": message_id,
        "mailing_id": 1,
        "client_id": message_id,
        "status": "pending",
        "created_at": now,
        "sent_at": None,
        "attempts": 0,
        "last_error": None,
        "due_at": now,
        "lease_owner": None,
    }


def batches(first: int, last: int, size: int) -> Iterator[range]:
    for start in range(first, last + 1, size):
        yield range(start, min(start + size, last + 1))


def start_probe(log_dir: Path, name: str = "probe") -> tuple[Child, str]:
    """The emulator as a child process on a free port of loopback, and its base URL."""
    port = free_port()
    env = child_env({"HERALD_PROBE_HOST": HOST, "HERALD_PROBE_PORT": str(port)})
    return Child(name, "probe", env, log_dir), f"http://{HOST}:{port}"


@asynccontextmanager
async def seeded_database(base_url: str, prefix: str, clients: int) -> AsyncIterator[tuple[Database, str]]:
    """A fresh database of `clients` clients on the server, and its URL; dropped afterwards."""
    client: MongoClient = AsyncMongoClient(base_url, tz_aware=True, timeoutMS=60_000)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        say(f"seeding {clients:,} clients ...")
        await seed_clients(client[name], clients)
        yield client[name], with_database(base_url, name)
        await bounded(lambda: client.drop_database(name), 60)
    finally:
        await client.close()


async def seed_clients(db: Database, count: int) -> float:
    """Insert clients 1..count as the store writes them; returns the seconds it took.

    Herald creates the indexes when it starts: FerretDB 1.24 drops the connection when createIndexes names
    several indexes that all exist already, so they must not be made here first.
    """
    started = time.monotonic()
    next_report = started + 5
    now = datetime.now(UTC)
    for ids in batches(1, count, SEED_BATCH):
        await db.clients.insert_many([client_doc(i, now) for i in ids], ordered=False)
        if time.monotonic() >= next_report:
            say(f"  seeding: {ids[-1]:,} of {count:,} clients")
            next_report += 5
    await db.counters.update_one({"_id": "clients"}, {"$max": {"seq": count}}, upsert=True)
    return time.monotonic() - started


# Rates


@dataclass
class Rate:
    count: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Ceilings:
    emulator: Rate | None = None
    db_insert: Rate | None = None
    db_claim: Rate | None = None
    db_claim_batch: int = 0


# Ceilings, measured before Herald runs so that nothing Herald does to the servers can spoil them


async def emulator_ceiling(probe_base: str, token: str, concurrency: int, count: int, limit_s: float) -> Rate:
    """A bare aiohttp client posting valid sends with Herald's concurrency: what the emulator itself can take."""
    ids = itertools.count(CEILING_ID_BASE)
    last_id = CEILING_ID_BASE + count
    headers = {"Authorization": f"Bearer {token}"}
    accepted = 0
    stop_at = time.monotonic() + limit_s
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal accepted
            while time.monotonic() < stop_at and (msg_id := next(ids)) < last_id:
                body = {"id": msg_id, "phone": 79001234567, "text": TEXT}
                async with session.post(f"{probe_base}/v1/send/{msg_id}", json=body, headers=headers) as response:
                    await response.read()
                    accepted += response.status == 200

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return Rate(accepted, time.monotonic() - started)


async def db_insert_ceiling(db: Database, count: int, batch_size: int, stop_at: float) -> Rate:
    """insert_many of message-shaped documents in the planner's batch size, into the indexed collection."""
    await db.messages.create_indexes(INDEXES["messages"])
    now = datetime.now(UTC)
    inserted = 0
    started = time.monotonic()
    for ids in batches(1, count, batch_size):
        if time.monotonic() >= stop_at:
            break
        await db.messages.insert_many([message_doc(i, now) for i in ids], ordered=False)
        inserted += len(ids)
    return Rate(inserted, time.monotonic() - started)


async def claim_and_settle(db: Database, batch_size: int, lease_s: float) -> int:
    """One round of the dispatcher's database work, as Herald does it: read the messages due first, take them with
    one conditional update under a fresh token, look up their clients and mailing, then record them sent in one
    update_many under the token."""
    col = db.messages
    now = datetime.now(UTC)
    due = {"due_at": {"$lte": now}}
    docs = await col.find(due).sort("due_at", 1).limit(batch_size).batch_size(batch_size).to_list()
    if not docs:
        return 0
    ids = [doc["_id"] for doc in docs]
    token = uuid.uuid4().hex
    await col.update_many(
        {"_id": {"$in": ids}, "attempts": 0, **due},
        {
            "$set": {"status": "sending", "lease_owner": token, "due_at": now + timedelta(seconds=lease_s)},
            "$inc": {"attempts": 1},
        },
    )
    await db.clients.find({"_id": {"$in": [doc["client_id"] for doc in docs]}}).to_list()
    await db.mailings.find({"_id": {"$in": [1]}}).to_list()
    sent = {"status": "sent", "sent_at": now, "due_at": None, "last_error": None, "lease_owner": None}
    result = await col.update_many({"_id": {"$in": ids}, "lease_owner": token, "status": "sending"}, {"$set": sent})
    return result.modified_count


async def db_claim_ceiling(db: Database, batch_size: int, lease_s: float, limit_s: float) -> tuple[Rate, int]:
    """Claim + settle rounds for about `limit_s`; returns the rate and the most messages one round settled.

    A round is never cut short: FerretDB carries on with an update its client gave up on, which would slow down
    whatever runs next. So a first round of CLAIM_PROBE_BATCH measures the cost of a message (it may overrun the
    limit on a slow server), and each later round is as large as fits in the time left, up to `batch_size`.
    """
    started = time.monotonic()
    settled, size, largest = 0, min(batch_size, CLAIM_PROBE_BATCH), 0
    while size >= 1:
        round_started = time.monotonic()
        done = await claim_and_settle(db, size, lease_s)
        if not done:
            break
        settled, largest = settled + done, max(largest, done)
        per_message = (time.monotonic() - round_started) / done
        size = min(batch_size, int((started + limit_s - time.monotonic()) / per_message))
    return Rate(settled, time.monotonic() - started), largest


async def measure_ceilings(
    base_url: str, config: Config, probe_base: str, args: argparse.Namespace, clients: int
) -> Ceilings:
    ceilings = Ceilings()
    sample = min(clients, args.emulator_sample)
    say(f"ceiling: emulator, {sample:,} requests at concurrency {config.dispatch.concurrency} ...")
    ceilings.emulator = await emulator_ceiling(
        probe_base, config.sender.token, config.dispatch.concurrency, sample, args.ceiling_seconds
    )
    client: MongoClient = AsyncMongoClient(base_url, tz_aware=True, timeoutMS=CEILING_OP_TIMEOUT_MS)
    try:
        await measure_db_ceilings(client, ceilings, config, args, clients)
    except PyMongoError as exc:
        say(f"  the database ceiling could not be measured: {type(exc).__name__}: {exc}")
    finally:
        await client.close()
    return ceilings


async def measure_db_ceilings(
    client: MongoClient, ceilings: Ceilings, config: Config, args: argparse.Namespace, clients: int
) -> None:
    name = f"bench_ceiling_{uuid.uuid4().hex[:8]}"
    db = client[name]
    try:
        say(f"ceiling: database insert_many, {clients:,} documents in batches of {config.planner.batch_size} ...")
        ceilings.db_insert = await db_insert_ceiling(
            db, clients, config.planner.batch_size, time.monotonic() + args.ceiling_seconds
        )
        say(f"ceiling: database claim + settle, batches of {config.dispatch.batch_size} ...")
        ceilings.db_claim, ceilings.db_claim_batch = await db_claim_ceiling(
            db, config.dispatch.batch_size, config.dispatch.lease_s, args.ceiling_seconds
        )
    finally:
        await bounded(lambda: client.drop_database(name), FINAL_COUNT_TIMEOUT_S)


# The Herald run


@dataclass
class HeraldResult:
    wanted: int
    planned: Rate = field(default_factory=lambda: Rate(0, 0))
    planning_done: bool = False
    delivered: Rate = field(default_factory=lambda: Rate(0, 0))
    delivery_done: bool = False
    delivered_after_planning: Rate | None = None
    settled: Rate | None = None
    stop_reason: str = ""
    messages_in_db: int | None = None
    requests: int = 0
    duplicates: int = 0
    peak_rss_mb: float | None = None
    cpu_s: dict[str, float] = field(default_factory=dict)
    cpu_wall_s: float = 0.0
    db_answers_after: bool = True


def seconds_since(origin: datetime, when: datetime) -> float:
    return (when - origin).total_seconds()


async def create_mailing(
    session: aiohttp.ClientSession, api_url: str, text: str = TEXT, end_s: float = 3600
) -> tuple[int, datetime]:
    """A mailing to every client, started a minute ago, ending in `end_s`: its id and its end."""
    now = datetime.now(UTC)
    body = {
        "text": text,
        "start_at": (now - timedelta(minutes=1)).isoformat(),
        "end_at": (now + timedelta(seconds=end_s)).isoformat(),
        "filter": {},
    }
    async with session.post(f"{api_url}/api/v1/mailings", json=body) as response:
        payload = await response.json(content_type=None)
        if response.status != 201:
            raise RuntimeError(f"creating the mailing failed: {response.status} {payload}")
        return int(payload["id"]), datetime.fromisoformat(payload["end_at"])


async def probe_stats(session: aiohttp.ClientSession, probe_base: str) -> dict[str, Any]:
    async with session.get(f"{probe_base}/_probe/stats") as response:
        response.raise_for_status()
        result: dict[str, Any] = await response.json()
        return result


async def bounded(query: Callable[[], Any], timeout_s: float = POLL_TIMEOUT_S) -> Any:
    """Run a database read within `timeout_s`; None when the database does not answer in time."""
    try:
        with pymongo.timeout(timeout_s):
            return await query()
    except PyMongoError:
        return None


class CpuMeter:
    """CPU seconds each process used between start() and stop(), and the wall-clock seconds in between."""

    def __init__(self, pids: Mapping[str, int | None]) -> None:
        self._pids = {name: pid for name, pid in pids.items() if pid is not None}
        self._start: dict[str, float] = {}
        self._started = 0.0

    def _now(self) -> dict[str, float]:
        return {name: cpu for name, pid in self._pids.items() if (cpu := proc_cpu_s(pid)) is not None}

    def start(self) -> None:
        self._start, self._started = self._now(), time.monotonic()

    def stop(self) -> tuple[dict[str, float], float]:
        used = {name: cpu - self._start[name] for name, cpu in self._now().items() if name in self._start}
        return used, time.monotonic() - self._started


@dataclass
class Watch:
    """What the polling loop needs between rounds."""

    origin: datetime
    deadline: float
    stall_s: float
    progress_s: float
    pid: int | None  # the worker's, for its memory
    last_progress: float = field(default_factory=time.monotonic)
    last_seen: tuple[int, int] = (0, 0)
    next_report: float = 0.0
    report_accepted: int = 0
    report_at: float = field(default_factory=time.monotonic)
    planned_at: datetime | None = None
    accepted_when_planned: int = 0

    def moved(self, planned: int, accepted: int) -> None:
        if (planned, accepted) != self.last_seen:
            self.last_seen, self.last_progress = (planned, accepted), time.monotonic()

    def stop_reason(self) -> str:
        now = time.monotonic()
        if now >= self.deadline:
            return "time limit reached"
        if now - self.last_progress >= self.stall_s:
            return f"nothing moved for {self.stall_s:.0f}s"
        return ""


def progress_line(watch: Watch, planned: int, accepted: int, db_ok: bool) -> str:
    now = time.monotonic()
    rate = (accepted - watch.report_accepted) / max(now - watch.report_at, 1e-9)
    rss = proc_field_kb(watch.pid, "VmRSS") if watch.pid else None
    return (
        f"  {seconds_since(watch.origin, datetime.now(UTC)):6.1f}s  planned {planned:>9,}"
        f"  accepted {accepted:>9,}  ({rate:,.0f}/s now)"
        + (f"  herald RSS {rss / 1024:.0f} MB" if rss else "")
        + ("" if db_ok else "  [database not answering]")
    )


def note_planning(watch: Watch, result: HeraldResult, mailing: Mapping[str, Any] | None, accepted: int) -> None:
    if watch.planned_at is not None or mailing is None:
        return
    if mailing.get("planned_at") is not None:
        watch.planned_at, watch.accepted_when_planned = mailing["planned_at"], accepted
        result.planned = Rate(result.wanted, seconds_since(watch.origin, watch.planned_at))
        result.planning_done = True
    # Timed when a count is first seen, so that a stall afterwards does not dilute the rate.
    elif (planned := int(mailing.get("plan_cursor") or 0)) != result.planned.count:
        result.planned = Rate(planned, seconds_since(watch.origin, datetime.now(UTC)))


def note_delivery(watch: Watch, result: HeraldResult, stats: Mapping[str, Any]) -> None:
    accepted = int(stats["unique_accepted"])
    last = datetime.fromisoformat(stats["last_arrival"]) if stats["last_arrival"] else datetime.now(UTC)
    result.delivered = Rate(accepted, seconds_since(watch.origin, last))
    result.delivery_done = accepted >= result.wanted
    if result.delivery_done and watch.planned_at is not None and last > watch.planned_at:
        result.delivered_after_planning = Rate(
            accepted - watch.accepted_when_planned, seconds_since(watch.planned_at, last)
        )


async def poll_once(
    session: aiohttp.ClientSession, db: Database, mailing_id: int, probe_base: str, watch: Watch, result: HeraldResult
) -> bool:
    """One round of polling; True when every message has been accepted by the emulator."""
    mailing = await bounded(lambda: db.mailings.find_one({"_id": mailing_id}, {"plan_cursor": 1, "planned_at": 1}))
    stats = await probe_stats(session, probe_base)
    note_planning(watch, result, mailing, int(stats["unique_accepted"]))
    note_delivery(watch, result, stats)
    watch.moved(result.planned.count, result.delivered.count)
    if not result.delivery_done and time.monotonic() >= watch.next_report:
        say(progress_line(watch, result.planned.count, result.delivered.count, mailing is not None))
        watch.next_report = time.monotonic() + watch.progress_s
        watch.report_accepted, watch.report_at = result.delivered.count, time.monotonic()
    return result.delivery_done


async def wait_settled(db: Database, mailing_id: int, wanted: int, origin: datetime, deadline: float) -> Rate | None:
    """Until every message is recorded as sent in the database: the outcome writes trail the requests."""
    while True:
        sent = await bounded(lambda: db.messages.count_documents({"mailing_id": mailing_id, "status": "sent"}))
        if sent is None:
            return None
        if sent >= wanted or time.monotonic() >= deadline:
            return Rate(sent, seconds_since(origin, datetime.now(UTC)))
        await asyncio.sleep(POLL_S)


async def run_herald(
    session: aiohttp.ClientSession,
    db: Database,
    herald: HeraldRunner,
    probe_base: str,
    wanted: int,
    watch_args: tuple[float, float, float],
    cpu: CpuMeter,
) -> HeraldResult:
    """Create one mailing and watch it until the emulator has accepted every message, or it stalls, or time is up."""
    deadline, stall_s, progress_s = watch_args
    result = HeraldResult(wanted)
    watch = Watch(
        datetime.now(UTC), deadline, stall_s, progress_s, herald.pid, next_report=time.monotonic() + progress_s
    )
    cpu.start()
    mailing_id, _ = await create_mailing(session, herald.api_url)
    while True:
        herald.check_alive()
        if await poll_once(session, db, mailing_id, probe_base, watch, result):
            break
        if reason := watch.stop_reason():
            result.stop_reason = reason
            say(f"  stopping: {reason}; the figures below are partial")
            break
        await asyncio.sleep(POLL_S)
    if result.delivery_done:
        result.settled = await wait_settled(db, mailing_id, wanted, watch.origin, deadline)
    result.cpu_s, result.cpu_wall_s = cpu.stop()
    result.messages_in_db = await bounded(
        lambda: db.messages.count_documents({"mailing_id": mailing_id}), FINAL_COUNT_TIMEOUT_S
    )
    result.db_answers_after = await bounded(lambda: db.counters.find_one({})) is not None
    stats = await probe_stats(session, probe_base)
    result.requests, result.duplicates = int(stats["requests"]), int(stats["duplicates"])
    if herald.pid is not None and (hwm := proc_field_kb(herald.pid, "VmHWM")) is not None:
        result.peak_rss_mb = hwm / 1024
    return result


# Report


def fmt_rate(rate: Rate | None, wanted: int | None = None) -> str:
    if rate is None:
        return "-"
    partial = f" (partial {rate.count:,}/{wanted:,})" if wanted is not None and rate.count < wanted else ""
    return f"{rate.per_s:,.{1 if rate.per_s < 10 else 0}f}{partial}"


def ratio(herald: Rate | None, ceiling: Rate | None) -> str:
    if herald is None or ceiling is None or ceiling.per_s == 0:
        return "-"
    return f"{herald.per_s / ceiling.per_s:.0%}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


HEADER = ("metric", "Herald", "ceiling", "ratio", "target")


def delivery_target(result: HeraldResult, smallest: HeraldResult | None) -> str:
    """The delivery target of a run and whether it holds; a larger run is held to the smallest run's rate too."""
    delivered = result.delivered.per_s
    if result.wanted <= SMALL_RUN:
        return (
            f">= {TARGET_DELIVERY_SMALL:,.0f}/s: {verdict(result.delivery_done and delivered >= TARGET_DELIVERY_SMALL)}"
        )
    target = f">= {TARGET_DELIVERY_LARGE:,.0f}/s"
    ok = result.delivery_done and delivered >= TARGET_DELIVERY_LARGE
    if smallest is not None and smallest is not result:
        target += f" and >= {FLAT_SHARE:.0%} of {smallest.wanted:,} clients' {smallest.delivered.per_s:,.0f}/s"
        ok = ok and delivered >= FLAT_SHARE * smallest.delivered.per_s
    return f"{target}: {verdict(ok)}"


def report_rows(
    result: HeraldResult, ceilings: Ceilings, smallest: HeraldResult | None
) -> list[tuple[str, str, str, str, str]]:
    n, delivered, planned = result.wanted, result.delivered, result.planned
    rss = result.peak_rss_mb
    return [
        (
            "planning, messages created/s",
            fmt_rate(planned, n),
            fmt_rate(ceilings.db_insert),
            ratio(planned, ceilings.db_insert),
            f">= {TARGET_PLANNING:,.0f}/s: {verdict(result.planning_done and planned.per_s >= TARGET_PLANNING)}",
        ),
        (
            "delivery end-to-end, msg/s",
            fmt_rate(delivered, n),
            fmt_rate(ceilings.emulator),
            ratio(delivered, ceilings.emulator),
            delivery_target(result, smallest),
        ),
        (
            "  same, vs DB claim+settle",
            fmt_rate(delivered, n),
            fmt_rate(ceilings.db_claim),
            ratio(delivered, ceilings.db_claim),
            "",
        ),
        ("  after planning finished, msg/s", fmt_rate(result.delivered_after_planning), "", "", ""),
        ("  recorded sent in DB, msg/s", fmt_rate(result.settled, n), "", "", ""),
        ("duplicates at the emulator", f"{result.duplicates:,}", "", "", f"0: {verdict(result.duplicates == 0)}"),
        (
            "worker peak RSS, MB",
            "-" if rss is None else f"{rss:,.0f}",
            "",
            "",
            f"< {TARGET_RSS_MB:.0f} MB: " + ("n/a" if rss is None else verdict(rss < TARGET_RSS_MB)),
        ),
    ]


def print_table(rows: list[tuple[str, str, str, str, str]]) -> None:
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(4)]
    for row in [HEADER, *rows]:
        numbers = (cell.rjust(width) for cell, width in zip(row[1:4], widths[1:], strict=True))
        cells = [row[0].ljust(widths[0]), *numbers]
        say("  ".join([*cells, row[4]]).rstrip())


def print_notes(result: HeraldResult, ceilings: Ceilings, config: Config) -> None:
    in_db = "?" if result.messages_in_db is None else f"{result.messages_in_db:,}"
    say(
        f"clients {result.wanted:,}; dispatch concurrency {config.dispatch.concurrency}, batch "
        f"{config.dispatch.batch_size}; planner batch {config.planner.batch_size}; messages in DB {in_db}; "
        f"emulator requests {result.requests:,}"
    )
    if result.stop_reason:
        say(
            f"stopped early: {result.stop_reason}; the database "
            + ("still answers" if result.db_answers_after else "no longer answers")
        )
    for name, rate in (("planning", result.planned), ("delivery", result.delivered), ("settled", result.settled)):
        if rate is not None:
            say(f"{name}: {rate.count:,} in {rate.seconds:.1f}s from mailing creation")
    if result.cpu_s and (span := result.cpu_wall_s) > 0:
        used = ", ".join(f"{name} {cpu:.1f}s ({cpu / span:.0%})" for name, cpu in result.cpu_s.items())
        say(f"CPU during the Herald run ({span:.0f}s), share of one core ({os.cpu_count()} cores): {used}")
    largest = (
        f"; largest round {ceilings.db_claim_batch}" if ceilings.db_claim_batch < config.dispatch.batch_size else ""
    )
    for name, rate, how in (
        ("emulator ceiling", ceilings.emulator, f"bare aiohttp, concurrency {config.dispatch.concurrency}"),
        ("DB insert ceiling", ceilings.db_insert, f"insert_many batches of {config.planner.batch_size}"),
        ("DB claim+settle ceiling", ceilings.db_claim, f"claim batches of {config.dispatch.batch_size}{largest}"),
    ):
        if rate is not None:
            say(f"{name}: {rate.count:,} in {rate.seconds:.1f}s ({how})")


# Wiring


@contextmanager
def mongo_base(log_dir: Path) -> Iterator[tuple[str, int | None]]:
    """(URL of the server without a database, FerretDB's pid or None): $HERALD_MONGO_URL's server, else our own."""
    if url := os.environ.get("HERALD_MONGO_URL"):
        yield urlunsplit(urlsplit(url)._replace(path="/")), None
        return
    server = LocalFerretDB(data_dir=log_dir / "ferretdb").start()
    try:
        # LocalFerretDB keeps its process private; the pid is read only to account for the database's CPU.
        process = getattr(server, "_process", None)
        yield server.url(""), None if process is None else process.pid
    finally:
        server.stop()


def with_database(base_url: str, name: str) -> str:
    return urlunsplit(urlsplit(base_url)._replace(path=f"/{name}"))


def bench_config(args: argparse.Namespace, mongo_url: str, probe_base: str) -> Config:
    config = load_config(env={})
    concurrency = args.concurrency or config.dispatch.concurrency
    return config.replace(
        mongo={"url": mongo_url},
        # A connection pool smaller than the concurrency would cap it silently.
        sender={
            "url": f"{probe_base}/v1",
            "token": make_token(config.probe.jwt_secret),
            "max_connections": max(config.sender.max_connections, concurrency),
        },
        dispatch={"concurrency": concurrency, "batch_size": args.batch_size or config.dispatch.batch_size},
        planner={"batch_size": args.planner_batch_size or config.planner.batch_size},
    )


async def measure_herald(
    session: aiohttp.ClientSession,
    client: MongoClient,
    config: Config,
    probe: Child,
    probe_base: str,
    ferretdb_pid: int | None,
    args: argparse.Namespace,
    deadline: float,
    log_dir: Path,
    clients: int,
) -> HeraldResult:
    herald: HeraldRunner = HeraldInProcess(config) if args.in_process else HeraldSubprocess(config, log_dir)
    try:
        await herald.start(session)
        say(f"herald on {herald.api_url} (pid {herald.pid or 'this process'}); sending {clients:,} messages ...")
        cpu = CpuMeter({"herald": herald.pid or os.getpid(), "emulator": probe.pid, "ferretdb": ferretdb_pid})
        db = client[urlsplit(config.mongo.url).path.strip("/")]
        result = await run_herald(
            session, db, herald, probe_base, clients, (deadline, args.stall_seconds, args.progress_seconds), cpu
        )
        if summary := herald.log_summary():
            say(f"herald's most frequent warnings and errors:\n{summary}")
        return result
    finally:
        await herald.stop()


async def bench(args: argparse.Namespace, log_dir: Path) -> None:
    """One run per size, each on a fresh database of the same server, smallest first."""
    probe, probe_base = start_probe(log_dir)
    runs: list[tuple[HeraldResult, Ceilings, Config]] = []
    try:
        with mongo_base(log_dir) as (base_url, ferretdb_pid):
            for clients in sorted(args.clients):
                deadline = time.monotonic() + args.max_seconds - SHUTDOWN_RESERVE_S
                runs.append(
                    await bench_size(args, log_dir, base_url, ferretdb_pid, probe, probe_base, clients, deadline)
                )
                say("")
                print_table(report_rows(runs[-1][0], runs[-1][1], runs[0][0]))
                say("")
                print_notes(*runs[-1])
                say("")
        if len(runs) > 1:
            print_summary([result for result, _, _ in runs])
    finally:
        probe.stop()


async def bench_size(
    args: argparse.Namespace,
    log_dir: Path,
    base_url: str,
    ferretdb_pid: int | None,
    probe: Child,
    probe_base: str,
    clients: int,
    deadline: float,
) -> tuple[HeraldResult, Ceilings, Config]:
    db_name = f"bench_{uuid.uuid4().hex[:8]}"
    config = bench_config(args, with_database(base_url, db_name), probe_base)
    client: MongoClient = AsyncMongoClient(base_url, tz_aware=True, timeoutMS=60_000)
    try:
        say(f"== {clients:,} clients ==")
        say(f"seeding {clients:,} clients into {config.mongo.url} ...")
        seed_s = await seed_clients(client[db_name], clients)
        say(f"seeded in {seed_s:.1f}s ({clients / seed_s:,.0f} clients/s)")
        async with aiohttp.ClientSession(timeout=CONTROL_TIMEOUT) as session:
            await wait_http_ok(session, f"{probe_base}/_probe/stats", probe.check_alive)
            ceilings = await measure_ceilings(base_url, config, probe_base, args, clients)
            async with session.post(f"{probe_base}/_probe/reset") as response:
                response.raise_for_status()
            result = await measure_herald(
                session, client, config, probe, probe_base, ferretdb_pid, args, deadline, log_dir, clients
            )
        # The database has done its work: dropping it keeps the next size's run on a server of the same size.
        await bounded(lambda: client.drop_database(db_name), FINAL_COUNT_TIMEOUT_S)
    finally:
        await client.close()
    return result, ceilings, config


def print_summary(results: list[HeraldResult]) -> None:
    """Delivery per size next to the smallest run's: flat means the cost of a message does not grow with the data."""
    say(f"delivery by size (flat: each larger run keeps {FLAT_SHARE:.0%} of the smallest run's rate)")
    smallest = results[0].delivered.per_s
    for result in results:
        share = f"{result.delivered.per_s / smallest:.0%}" if smallest else "-"
        say(
            f"  {result.wanted:>9,} clients  {fmt_rate(result.delivered, result.wanted):>12} msg/s  {share:>5} "
            f"of the smallest  planning {fmt_rate(result.planned, result.wanted)} msg/s"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=[5_000, 100_000],
        help="clients, hence messages, of each run, one run per size (default 5000 100000)",
    )
    parser.add_argument("--concurrency", type=int, help="dispatch.concurrency (default: config.yaml's)")
    parser.add_argument("--batch-size", type=int, help="dispatch.batch_size, the claim size (default: config's)")
    parser.add_argument("--planner-batch-size", type=int, help="planner.batch_size (default: config's)")
    parser.add_argument("--max-seconds", type=float, default=600, help="hard limit of each size's run (default 600)")
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=180,
        help="stop when nothing is planned or delivered for this long (default 180: a claimed "
        "message that could not be sent waits out its 60 s lease first)",
    )
    parser.add_argument("--ceiling-seconds", type=float, default=30, help="limit of each ceiling (default 30)")
    parser.add_argument(
        "--emulator-sample", type=int, default=20_000, help="requests of the raw emulator ceiling (default 20000)"
    )
    parser.add_argument("--progress-seconds", type=float, default=5, help="progress line interval (default 5)")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the logs of Herald, the emulator and FerretDB, and say where"
    )
    parser.add_argument("--in-process", action="store_true", help="run Herald in this process (no separate peak RSS)")
    args = parser.parse_args()
    if not all(1 <= clients < 10**7 for clients in args.clients):
        parser.error("--clients must be between 1 and 9999999")
    if args.max_seconds <= 3 * args.ceiling_seconds + SHUTDOWN_RESERVE_S:
        parser.error("--max-seconds must leave time for Herald beyond 3 x --ceiling-seconds and shutdown")
    return args


def keep_logs(log_dir: Path) -> None:
    # The logs tell what went wrong; the database files only take room.
    shutil.rmtree(log_dir / "ferretdb" / "sqlite", ignore_errors=True)
    print(f"logs kept in {log_dir}", file=sys.stderr)


def interrupt(signum: int, frame: object) -> None:
    # SIGTERM (from `timeout`, say) unwinds like Ctrl+C, so the subprocesses and FerretDB are stopped too.
    raise KeyboardInterrupt


def run_with_logs(prefix: str, run: Callable[[Path], Coroutine[Any, Any, None]], keep: bool) -> None:
    """Run a benchmark with a log directory of its own, kept if it fails or when asked; SIGTERM acts as Ctrl+C."""
    signal.signal(signal.SIGTERM, interrupt)
    log_dir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        asyncio.run(run(log_dir))
    except BaseException:
        keep_logs(log_dir)
        raise
    if keep:
        keep_logs(log_dir)
    else:
        shutil.rmtree(log_dir, ignore_errors=True)


def main() -> None:
    args = parse_args()
    run_with_logs("herald-bench-", lambda log_dir: bench(args, log_dir), args.keep_logs)


if __name__ == "__main__":
    main()
