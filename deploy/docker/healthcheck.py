"""The image's HEALTHCHECK: GET /healthz (or the emulator's stats) on the port of the command this container runs.

One image runs every role, so the port depends on PID 1's `herald` subcommand and on the effective configuration
(config.yaml plus HERALD_* overrides), exactly as the process itself resolved them.
"""

import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from herald.config import Config, load_config

SERVING_COMMANDS = ("serve", "api", "worker", "probe")


def health_url(cmdline: Sequence[str], config: Config) -> str:
    """The URL that answers 200 while the `herald` process started by ``cmdline`` is alive."""
    command = next((arg for arg in cmdline if arg in SERVING_COMMANDS), "serve")
    if command == "probe":
        return f"http://127.0.0.1:{config.probe.port}/_probe/stats"
    port = config.http.worker_port if command == "worker" else config.http.port
    return f"http://127.0.0.1:{port}/healthz"


def main() -> None:
    cmdline = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
    try:
        with urllib.request.urlopen(health_url(cmdline, load_config()), timeout=3) as response:
            sys.exit(0 if response.status == 200 else 1)
    except OSError as exc:
        sys.exit(f"unhealthy: {exc}")


if __name__ == "__main__":
    main()
