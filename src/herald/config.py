"""Configuration: YAML defaults, HERALD_SECTION_KEY environment overrides, validated once into frozen dataclasses."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

import yaml

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config.yaml"
ENV_PREFIX = "HERALD_"


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key."""


def _positive(value: float) -> bool:
    return value > 0


@dataclasses.dataclass(frozen=True)
class MongoConfig:
    url: str

    @property
    def database(self) -> str:
        return urlsplit(self.url).path.lstrip("/").split("/")[0]


@dataclasses.dataclass(frozen=True)
class HttpConfig:
    host: str
    port: int
    worker_port: int


@dataclasses.dataclass(frozen=True)
class SenderConfig:
    url: str
    token: str = dataclasses.field(repr=False)
    timeout_s: float
    connect_timeout_s: float
    inline_attempts: int
    max_connections: int


@dataclasses.dataclass(frozen=True)
class DispatchConfig:
    batch_size: int
    concurrency: int
    lease_s: float
    poll_s: float
    backoff_base_s: float
    backoff_cap_s: float
    max_attempts: int
    grace_s: float
    min_concurrency: int
    breaker_failures: int
    breaker_error_rate: float
    breaker_open_s: float
    breaker_max_open_s: float
    rate_limit_per_s: float


@dataclasses.dataclass(frozen=True)
class PlannerConfig:
    batch_size: int
    poll_s: float
    lease_s: float


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    host: str
    port: int
    jwt_secret: str = dataclasses.field(repr=False)
    latency_ms: int
    error_rate: float
    malformed_rate: float
    drop_rate: float
    outage: bool
    seed: int


@dataclasses.dataclass(frozen=True)
class LogConfig:
    level: str
    format: str


@dataclasses.dataclass(frozen=True)
class Config:
    mongo: MongoConfig
    http: HttpConfig
    sender: SenderConfig
    dispatch: DispatchConfig
    planner: PlannerConfig
    probe: ProbeConfig
    log: LogConfig

    def replace(self, **sections: Any) -> Config:
        """A copy with some keys changed, e.g. ``replace(dispatch={"concurrency": 5})``."""
        changed = {
            name: dataclasses.replace(getattr(self, name), **values) for name, values in sections.items()
        }
        return dataclasses.replace(self, **changed)

    def masked(self) -> dict[str, dict[str, Any]]:
        """Every key and value, secrets replaced by asterisks: safe to print or log."""
        out: dict[str, dict[str, Any]] = {}
        for section in dataclasses.fields(self):
            values = dataclasses.asdict(getattr(self, section.name))
            for field in dataclasses.fields(getattr(self, section.name)):
                if not field.repr and values[field.name]:
                    values[field.name] = "***"
            out[section.name] = values
        return out


# Extra checks beyond the type: key -> (predicate, what it must be).
_RULES: dict[str, tuple[Any, str]] = {
    "http.port": (lambda v: 0 < v < 65536, "a TCP port"),
    "http.worker_port": (lambda v: 0 < v < 65536, "a TCP port"),
    "probe.port": (lambda v: 0 < v < 65536, "a TCP port"),
    "sender.timeout_s": (_positive, "positive"),
    "sender.connect_timeout_s": (_positive, "positive"),
    "sender.inline_attempts": (_positive, "at least 1"),
    "sender.max_connections": (_positive, "at least 1"),
    "dispatch.batch_size": (_positive, "at least 1"),
    "dispatch.concurrency": (_positive, "at least 1"),
    "dispatch.lease_s": (_positive, "positive"),
    "dispatch.poll_s": (_positive, "positive"),
    "dispatch.backoff_base_s": (_positive, "positive"),
    "dispatch.backoff_cap_s": (_positive, "positive"),
    "dispatch.max_attempts": (_positive, "at least 1"),
    "dispatch.grace_s": (lambda v: v >= 0, "zero or more"),
    "dispatch.min_concurrency": (_positive, "at least 1"),
    "dispatch.breaker_failures": (_positive, "at least 1"),
    "dispatch.breaker_error_rate": (lambda v: 0 < v <= 1, "above 0 and at most 1"),
    "dispatch.breaker_open_s": (_positive, "positive"),
    "dispatch.breaker_max_open_s": (_positive, "positive"),
    "dispatch.rate_limit_per_s": (lambda v: v >= 0, "zero (no limit) or more"),
    "planner.batch_size": (_positive, "at least 1"),
    "planner.poll_s": (_positive, "positive"),
    "planner.lease_s": (_positive, "positive"),
    "probe.error_rate": (lambda v: 0 <= v <= 1, "between 0 and 1"),
    "probe.malformed_rate": (lambda v: 0 <= v <= 1, "between 0 and 1"),
    "probe.drop_rate": (lambda v: 0 <= v <= 1, "between 0 and 1"),
    "log.level": (lambda v: v.upper() in {"DEBUG", "INFO", "WARNING", "ERROR"}, "DEBUG, INFO, WARNING or ERROR"),
    "log.format": (lambda v: v in {"auto", "json", "text"}, "auto, json or text"),
    "mongo.url": (lambda v: v.startswith(("mongodb://", "mongodb+srv://")) and urlsplit(v).path.strip("/"),
                  "a mongodb:// URL with the database name as its path"),
}


def _coerce(key: str, kind: type, value: Any) -> Any:
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        if kind is bool:
            if text.lower() in {"1", "true", "yes", "on"}:
                return True
            if text.lower() in {"0", "false", "no", "off"}:
                return False
        else:
            try:
                return kind(text)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is str and value is None:
        return ""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}")
    return value


def _build(raw: Mapping[str, Any], env: Mapping[str, str]) -> Config:
    sections: dict[str, Any] = {}
    hints = get_type_hints(Config)
    unknown = set(raw) - set(hints)
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(unknown))}")
    for section, section_cls in hints.items():
        values = raw.get(section) or {}
        if not isinstance(values, Mapping):
            raise ConfigError(f"{section}: expected a mapping")
        unknown = set(values) - set(get_type_hints(section_cls))
        if unknown:
            raise ConfigError(f"unknown key(s): {', '.join(f'{section}.{k}' for k in sorted(unknown))}")
    for section, section_cls in hints.items():
        values = raw.get(section) or {}
        field_types = get_type_hints(section_cls)
        kwargs = {}
        for name, kind in field_types.items():
            key = f"{section}.{name}"
            env_name = f"{ENV_PREFIX}{section}_{name}".upper()
            if env_name in env:
                value = env[env_name]
            elif name in values:
                value = values[name]
            else:
                raise ConfigError(f"{key}: missing")
            value = _coerce(key, kind, value)
            rule = _RULES.get(key)
            if rule and not rule[0](value):
                raise ConfigError(f"{key}: must be {rule[1]}, got {value!r}")
            kwargs[name] = value
        sections[section] = section_cls(**kwargs)
    return Config(**sections)


def load_config(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the YAML file (``HERALD_CONFIG`` or the repository's config.yaml) and apply env overrides."""
    env = os.environ if env is None else env
    path = Path(path or env.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_PATH)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping of sections")
    return _build(raw, env)
