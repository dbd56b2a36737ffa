"""A local FerretDB (MongoDB wire protocol on SQLite) for development and tests, where no MongoDB server runs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = REPO / ".local" / "bin" / "ferretdb"

# WAL with synchronous=NORMAL commits without an fsync each (still safe against a crash of any process, not
# against power loss: right for a development and test database), and BEGIN IMMEDIATE takes the write lock up
# front, where SQLite's busy timeout waits for it, instead of failing with "database is locked" on an upgrade.
SQLITE_OPTIONS = "_pragma=synchronous(normal)&_txlock=immediate"


def binary() -> Path:
    path = Path(os.environ.get("HERALD_FERRETDB_BIN", DEFAULT_BINARY))
    if not path.exists():
        raise FileNotFoundError(f"FerretDB is not built at {path}: run scripts/bootstrap first")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalFerretDB:
    """One FerretDB process with its own ports, state and data directories; nothing leaves the machine."""

    def __init__(self, data_dir: Path | None = None, port: int | None = None) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="herald-ferretdb-"))
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{database}"

    def start(self, timeout_s: float = 30) -> LocalFerretDB:
        (self.data_dir / "sqlite").mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "ferretdb.log", "ab")  # noqa: SIM115 - kept open for the process's life
        self._process = subprocess.Popen(
            [
                str(binary()),
                "--handler=sqlite",
                "--telemetry=disable",
                f"--listen-addr=127.0.0.1:{self.port}",
                f"--debug-addr=127.0.0.1:{free_port()}",
                f"--state-dir={self.data_dir}",
                f"--sqlite-url=file:{self.data_dir / 'sqlite'}/?{SQLITE_OPTIONS}",
                "--log-level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DO_NOT_TRACK": "1"},
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"FerretDB exited at start; see {self.data_dir / 'ferretdb.log'}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"FerretDB did not listen on port {self.port} within {timeout_s}s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
