"""The `herald` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Sequence
from datetime import date

from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning
from pymongo.errors import PyMongoError

from herald.api.openapi import document as openapi_document
from herald.app import ALL_ROLES, Role, create_app
from herald.config import Config, ConfigError, load_config
from herald.localdb import REPO, LocalFerretDB
from herald.logs import setup_logging
from herald.probe.app import create_probe_app, make_token
from herald.report.command import report_command
from herald.report.mail import SEND_ERRORS

log = logging.getLogger("herald")

Site = tuple[str, web.Application, str, int]  # (what it is, app, host, port)


async def _serve(sites: Sequence[Site], children: Sequence[subprocess.Popen[bytes]] = ()) -> None:
    """Run the apps until SIGINT or SIGTERM, or until a child process exits, then shut them down in reverse order
    (workers drain gracefully)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    watch = asyncio.create_task(_watch(children, stop))
    runners: list[web.AppRunner] = []
    try:
        for name, app, host, port in sites:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port).start()
            log.info("%s listening", name, extra={"url": f"http://{host}:{port}"})
        await stop.wait()
        log.info("shutting down")
    finally:
        watch.cancel()
        for runner in reversed(runners):
            await runner.cleanup()


async def _watch(children: Sequence[subprocess.Popen[bytes]], stop: asyncio.Event) -> None:
    while children:
        for child in children:
            if child.poll() is not None:
                if not stop.is_set():  # not on its way down with the rest of us
                    log.error("%s exited with %s; stopping", " ".join(map(str, child.args[2:])), child.returncode)
                    stop.set()
                return
        await asyncio.sleep(0.5)


def _run(sites: Sequence[Site], children: Sequence[subprocess.Popen[bytes]] = ()) -> None:
    asyncio.run(_serve(sites, children))


def cmd_serve(config: Config, roles: frozenset[Role], port: int) -> None:
    _run([("herald", create_app(config, roles=roles), config.http.host, port)])


def cmd_probe(config: Config) -> None:
    _run([("probe", create_probe_app(config.probe), config.probe.host, config.probe.port)])


def cmd_report(config: Config, day: date | None, *, dry_run: bool) -> None:
    if not dry_run and not config.email.to:
        sys.exit("herald report: email.recipients is empty: nobody to send the report to")
    try:
        print(asyncio.run(report_command(config, day, dry_run=dry_run)))
    except (*SEND_ERRORS, PyMongoError) as exc:
        sys.exit(f"herald report: not sent: {type(exc).__name__}: {exc}")


def cmd_dev(config: Config, config_path: str | None) -> None:
    """Everything on this machine, in the processes of a deployment: FerretDB (unless HERALD_MONGO_URL is set),
    the emulator and a worker (planner and dispatcher) as child processes, and the API in this one. A worker
    apart keeps the API quick while a large mailing keeps the worker busy, and uses the machine's second core."""
    db = None
    if "HERALD_MONGO_URL" not in os.environ:
        db = LocalFerretDB(data_dir=REPO / ".local" / "data", port=int(os.environ.get("HERALD_DEV_DB_PORT", "27018")))
        db.start()
        config = config.replace(mongo={"url": db.url("herald")})
    probe_url = f"http://{config.probe.host}:{config.probe.port}/v1"
    config = config.replace(sender={"url": probe_url, "token": make_token(config.probe.jwt_secret)})
    env = {
        **os.environ,
        "HERALD_MONGO_URL": config.mongo.url,
        "HERALD_SENDER_URL": config.sender.url,
        "HERALD_SENDER_TOKEN": config.sender.token,
    }
    base = f"http://{config.http.host}:{config.http.port}"
    print(
        f"\nHerald is starting on {config.mongo.url}\n"
        f"  API         {base}/api/v1\n"
        f"  Swagger UI  {base}/docs/\n"
        f"  Admin UI    {base}/admin/\n"
        f"  Worker      http://{config.http.host}:{config.http.worker_port}/metrics\n"
        f"  Emulator    {probe_url}  (deliveries: http://{config.probe.host}:{config.probe.port}/_probe/stats)\n"
        "Press Ctrl+C to stop.\n",
        flush=True,
    )
    options = ["--config", config_path] if config_path else []
    children: list[subprocess.Popen[bytes]] = []
    try:
        for command in ("probe", "worker"):
            children.append(subprocess.Popen([sys.executable, "-m", "herald", *options, command], env=env))
        _run(
            [("herald", create_app(config, roles=frozenset({Role.API})), config.http.host, config.http.port)], children
        )
    finally:
        _stop(children, config.dispatch.grace_s + 10)
        if db is not None:
            db.stop()


def _stop(children: Sequence[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """Ask each child to stop (Ctrl+C has already told them, a SIGTERM to this process has not), wait, then kill."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="herald", description="Herald notification mailing service.")
    parser.add_argument("--config", help="YAML file (default: $HERALD_CONFIG or the repository's config.yaml)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="API, planner and dispatcher in one process")
    commands.add_parser("api", help="the HTTP API only")
    commands.add_parser("worker", help="planner and dispatcher only (several may run against one database)")
    commands.add_parser("probe", help="the local emulator of the external send API")
    commands.add_parser("probe-token", help="print a bearer token the emulator accepts")
    commands.add_parser("dev", help="local all-in-one: FerretDB, the emulator, a worker and the API")
    commands.add_parser("config", help="print the effective configuration, secrets masked")
    openapi = commands.add_parser("openapi", help="print the API's OpenAPI document (docs/openapi.json is this)")
    openapi.add_argument(
        "--auth-mode", choices=["oidc", "none"], default="oidc", help="the document of that auth mode (default: oidc)"
    )
    report = commands.add_parser("report", help="send the daily statistics email now (once per day), or print it")
    report.add_argument("--date", type=date.fromisoformat, help="the day to report, YYYY-MM-DD (default: yesterday)")
    report.add_argument("--dry-run", action="store_true", help="print the report instead of sending it")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.exit(f"herald: invalid configuration: {exc}")
    setup_logging(config.log.level, config.log.format)
    # aiohttp-apigami 0.x keeps string app and request keys for compatibility; nothing for an operator to act on.
    warnings.filterwarnings("ignore", category=NotAppKeyWarning, module="aiohttp_apigami")

    match args.command:
        case "serve":
            cmd_serve(config, ALL_ROLES, config.http.port)
        case "api":
            cmd_serve(config, frozenset({Role.API}), config.http.port)
        case "worker":
            cmd_serve(config, frozenset({Role.PLANNER, Role.DISPATCHER}), config.http.worker_port)
        case "probe":
            cmd_probe(config)
        case "probe-token":
            print(make_token(config.probe.jwt_secret))
        case "dev":
            cmd_dev(config, args.config)
        case "config":
            print(json.dumps(config.masked(), indent=2))
        case "openapi":
            print(json.dumps(openapi_document(access_control=args.auth_mode == "oidc"), indent=2))
        case "report":
            cmd_report(config, args.date, dry_run=args.dry_run)


if __name__ == "__main__":
    main()
