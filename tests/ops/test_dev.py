"""`herald dev`, what `scripts/run` starts: the emulator and a worker as child processes, the API in its own;
a mailing created through the API reaches the emulator, and Ctrl+C stops every process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import aiohttp

from herald.localdb import free_port
from tests.helpers import eventually


async def test_the_quick_start_delivers_and_stops_every_process(db_url):
    ports = {"HERALD_HTTP_PORT": free_port(), "HERALD_HTTP_WORKER_PORT": free_port(), "HERALD_PROBE_PORT": free_port()}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HERALD_")},
        **{k: str(v) for k, v in ports.items()},
        "HERALD_MONGO_URL": db_url,
        "HERALD_LOG_LEVEL": "WARNING",
    }
    dev = subprocess.Popen(
        [sys.executable, "-m", "herald", "dev"], env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    api, probe = f"http://127.0.0.1:{ports['HERALD_HTTP_PORT']}", f"http://127.0.0.1:{ports['HERALD_PROBE_PORT']}"
    try:
        async with aiohttp.ClientSession() as session:

            async def answers(url: str) -> bool:
                try:
                    async with session.get(url) as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            for url in (
                f"{api}/readyz",
                f"http://127.0.0.1:{ports['HERALD_HTTP_WORKER_PORT']}/readyz",
                f"{probe}/_probe/stats",
            ):
                await eventually(lambda url=url: answers(url), timeout=30)
            now = datetime.now(UTC)
            async with session.post(
                f"{api}/api/v1/clients", json={"phone": "79001234567", "timezone": "Europe/Moscow"}
            ) as response:
                assert response.status == 201
            async with session.post(
                f"{api}/api/v1/mailings",
                json={
                    "text": "Hello!",
                    "start_at": (now - timedelta(minutes=1)).isoformat(),
                    "end_at": (now + timedelta(hours=1)).isoformat(),
                },
            ) as response:
                assert response.status == 201

            async def delivered() -> bool:
                async with session.get(f"{probe}/_probe/stats") as response:
                    return (await response.json())["unique_accepted"] == 1

            await eventually(delivered, timeout=30)
        # Ctrl+C in a terminal signals the whole process group.
        os.killpg(dev.pid, signal.SIGINT)
        assert dev.wait(60) == 0
        survivors = subprocess.run(
            ["pgrep", "-g", str(dev.pid)], check=False, capture_output=True, text=True
        ).stdout.split()
        assert survivors == []
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
