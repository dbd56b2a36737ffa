"""Bulk import speed and memory: N clients from a CSV file through POST /api/v1/clients/import, next to the
database's own ceiling for the same writes.

Everything runs on 127.0.0.1: a FerretDB of its own (unless HERALD_MONGO_URL is set) and `herald api` as a
subprocess. The file is generated (every tenth line refused, for the error path), streamed to the API from disk,
and the import's resource polled until it is done. The ceiling: bare PyMongo doing the database work of each batch
(find the batch's phones, insert the new clients) on a fresh database of the same server.

    .venv/bin/python bench/import.py [--clients 100000] [--mode insert|upsert] [--max-seconds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from pymongo import AsyncMongoClient

# The shared machinery of the benchmarks lives in delivery.py.
from delivery import (
    CONTROL_TIMEOUT,
    HOST,
    Child,
    MongoClient,
    Rate,
    bounded,
    child_env,
    mongo_base,
    proc_field_kb,
    run_with_logs,
    say,
    wait_http_ok,
    with_database,
)
from herald.localdb import free_port

TARGET_PER_S = 5000.0
TARGET_RSS_MB = 200.0
BATCH = 1000
REFUSED_EVERY = 10  # every tenth line has a bad phone


def write_file(path: Path, clients: int) -> int:
    """A CSV of `clients` data lines; returns how many of them are valid."""
    valid = 0
    with path.open("w") as out:
        out.write("phone,operator_code,tag,timezone\n")
        for i in range(clients):
            if i % REFUSED_EVERY == REFUSED_EVERY - 1:
                out.write(f"7{i:05d},,bad,Europe/Moscow\n")
            else:
                out.write(f"7910{i:07d},,{'vip' if i % 3 else ''},Europe/Moscow\n")
                valid += 1
    return valid


async def ceiling(client: MongoClient, base_url: str, path: Path) -> Rate:
    """Bare PyMongo: per batch of lines, look up the phones and insert the clients."""
    db = client[f"bench_import_ceiling_{uuid.uuid4().hex[:8]}"]
    await db.clients.create_index("phone", unique=True)
    now, done, next_id = datetime.now(UTC), 0, 1
    started = time.monotonic()
    try:
        lines = (await asyncio.to_thread(path.read_text)).splitlines()[1:]
        for first in range(0, len(lines), BATCH):
            rows = [line.split(",") for line in lines[first : first + BATCH]]
            rows = [row for row in rows if len(row[0]) == 11]
            await db.clients.find({"phone": {"$in": [row[0] for row in rows]}}).to_list()
            docs = [
                {
                    "_id": next_id + i,
                    "phone": row[0],
                    "operator_code": row[0][1:4],
                    "tag": row[2] or None,
                    "timezone": row[3],
                    "created_at": now,
                    "updated_at": now,
                }
                for i, row in enumerate(rows)
            ]
            await db.clients.insert_many(docs, ordered=False)
            next_id += len(docs)
            done += len(docs)
        return Rate(done, time.monotonic() - started)
    finally:
        await bounded(lambda: client.drop_database(db.name), 60)


async def run_import(
    session: aiohttp.ClientSession, api_url: str, path: Path, mode: str, pid: int, deadline: float
) -> tuple[dict, float, float]:
    """POST the file, poll until done; returns the resource, the seconds from the POST, and the peak RSS in MB."""
    started = time.monotonic()
    with path.open("rb") as body:
        async with session.post(
            f"{api_url}/api/v1/clients/import?mode={mode}", data=body, headers={"Content-Type": "text/csv"}
        ) as response:
            if response.status != 202:
                raise RuntimeError(f"import refused: {response.status} {await response.text()}")
            location = response.headers["Location"]
    while time.monotonic() < deadline:
        async with session.get(f"{api_url}{location}") as response:
            resource = await response.json()
        if resource["status"] != "running":
            break
        await asyncio.sleep(0.1)
    seconds = time.monotonic() - started
    return resource, seconds, (proc_field_kb(pid, "VmHWM") or 0) / 1024


async def measure(args: argparse.Namespace, log_dir: Path) -> None:
    path = Path(tempfile.mkdtemp(prefix="herald-import-bench-")) / "clients.csv"
    valid = write_file(path, args.clients)
    say(f"file: {args.clients:,} lines ({valid:,} valid), {path.stat().st_size / 2**20:.1f} MB")
    api_port = free_port()
    api_url = f"http://{HOST}:{api_port}"
    try:
        with mongo_base(log_dir) as (base_url, _):
            client: MongoClient = AsyncMongoClient(base_url, tz_aware=True, timeoutMS=120_000)
            db_name = f"bench_import_{uuid.uuid4().hex[:8]}"
            try:
                say("ceiling: bare PyMongo, batch by batch ...")
                bare = await ceiling(client, base_url, path)
                api = Child(
                    "herald-api",
                    "api",
                    child_env(
                        {
                            "HERALD_MONGO_URL": with_database(base_url, db_name),
                            "HERALD_HTTP_HOST": HOST,
                            "HERALD_HTTP_PORT": str(api_port),
                        }
                    ),
                    log_dir,
                )
                try:
                    async with aiohttp.ClientSession(timeout=CONTROL_TIMEOUT) as session:
                        await wait_http_ok(session, f"{api_url}/readyz", api.check_alive)
                        say(f"importing with mode={args.mode} ...")
                        resource, seconds, rss = await run_import(
                            session, api_url, path, args.mode, api.pid, time.monotonic() + args.max_seconds
                        )
                finally:
                    api.stop()
                await bounded(lambda: client.drop_database(db_name), 60)
            finally:
                await client.close()
    finally:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
    rate = resource["processed"] / seconds if seconds else 0.0
    done = resource["status"] == "done" and resource["processed"] == args.clients
    say("")
    say(f"{'metric':<32}{'Herald':>14}{'ceiling':>14}  target")
    say(
        f"{'import, lines/s':<32}{rate:>14,.0f}{bare.per_s:>14,.0f}  >= {TARGET_PER_S:,.0f}/s: "
        + ("PASS" if done and rate >= TARGET_PER_S else "FAIL")
    )
    say(
        f"{'API peak RSS, MB':<32}{rss:>14,.0f}{'':>14}  < {TARGET_RSS_MB:.0f} MB: "
        + ("PASS" if rss < TARGET_RSS_MB else "FAIL")
    )
    say("")
    say(
        f"import {resource['status']} in {seconds:.1f}s from the POST: processed {resource['processed']:,}, "
        f"created {resource['created']:,}, updated {resource['updated']:,}, skipped {resource['skipped']:,}, "
        f"failed {resource['failed']:,} (expected {args.clients - valid:,})"
    )
    say(
        f"ceiling: {bare.count:,} clients in {bare.seconds:.1f}s (bare PyMongo: per batch of {BATCH}, the phones "
        "looked up, then insert_many)"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100_000, help="lines of the file (default 100000)")
    parser.add_argument("--mode", choices=["insert", "upsert"], default="insert")
    parser.add_argument("--max-seconds", type=float, default=300, help="give up after (default 300)")
    parser.add_argument("--keep-logs", action="store_true", help="keep Herald's log")
    args = parser.parse_args()
    if not 1 <= args.clients <= 10_000_000:
        parser.error("--clients must be between 1 and 10000000")
    return args


def main() -> None:
    args = parse_args()
    run_with_logs("herald-bench-import-", lambda log_dir: measure(args, log_dir), args.keep_logs)


if __name__ == "__main__":
    main()
