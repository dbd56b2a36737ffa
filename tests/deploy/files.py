"""The deployment files as data: rendered, parsed and interpolated the way Docker Compose and kustomize read them."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, get_type_hints

import pytest
import yaml

from herald.config import ENV_PREFIX, Config

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("development", "production")
KUBERNETES_VERSION = "1.33.0"


def tool(name: str) -> Path:
    """A checker installed by scripts/bootstrap (the virtualenv) or scripts/test-deps (.local/bin). Missing fails."""
    for directory in (Path(sys.executable).parent, REPO / ".local" / "bin"):
        if (directory / name).is_file():
            return directory / name
    pytest.fail(f"{name} is not installed: run scripts/bootstrap and scripts/test-deps")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args], check=False, capture_output=True, text=True, cwd=REPO, timeout=120
    )


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """The manifests `kubectl apply -k deploy/k8s/overlays/<overlay>` would send."""
    result = run(tool("kustomize"), "build", f"deploy/k8s/overlays/{overlay}")
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((REPO / relative).read_text())


def compose() -> dict[str, Any]:
    return load_yaml("docker-compose.yml")


def gitlab_ci() -> dict[str, Any]:
    return load_yaml(".gitlab-ci.yml")


def env_file(relative: str) -> dict[str, str]:
    """KEY=VALUE lines of a .env-style file, without comments."""
    lines = (line.strip() for line in (REPO / relative).read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}; an unset required variable fails like compose does."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            pytest.fail(f"compose would stop: {name} is required: {arg}")
        return arg if op and op.endswith("-") else ""

    return _VARIABLE.sub(substitute, value)


def config_env_names() -> set[str]:
    """Every HERALD_SECTION_KEY that herald.config reads, plus HERALD_CONFIG."""
    names = {f"{ENV_PREFIX}CONFIG"}
    for section, section_cls in get_type_hints(Config).items():
        names.update(f"{ENV_PREFIX}{section}_{field.name}".upper() for field in dataclasses.fields(section_cls))
    return names


def herald_subcommands() -> set[str]:
    """The subcommands the installed `herald` command accepts, from its own usage line."""
    result = run(sys.executable, "-m", "herald", "--help")
    assert result.returncode == 0, result.stderr
    match = re.search(r"\{([\w,-]+)\}", result.stdout)
    assert match, result.stdout
    return set(match[1].split(","))


def containers(manifests: tuple[dict[str, Any], ...]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for every container of every Deployment and StatefulSet."""
    for manifest in manifests:
        if manifest["kind"] in {"Deployment", "StatefulSet"}:
            for container in manifest["spec"]["template"]["spec"]["containers"]:
                yield manifest, container


def of_kind(manifests: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {manifest["metadata"]["name"]: manifest for manifest in manifests if manifest["kind"] == kind}
