"""Configuration: YAML defaults, HERALD_SECTION_KEY environment overrides, validated once into frozen dataclasses."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config.yaml"
ENV_PREFIX = "HERALD_"


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key."""


def _positive(value: float) -> bool:
    return value > 0


def split_list(value: str) -> tuple[str, ...]:
    """A comma-separated list, as one string so that one environment variable can override it."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _is_address(value: str) -> bool:
    return re.fullmatch(r"[^@\s,]+@[^@\s,]+", value) is not None


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclasses.dataclass(frozen=True)
class MongoConfig:
    url: str
    timeout_s: float

    @property
    def database(self) -> str:
        return urlsplit(self.url).path.lstrip("/").split("/")[0]


@dataclasses.dataclass(frozen=True)
class HttpConfig:
    host: str
    port: int
    worker_port: int
    stats_max_age_s: float
    import_max_mb: int
    cors_origins: str


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
    start_concurrency: int
    min_concurrency: int
    breaker_failures: int
    breaker_error_rate: float
    breaker_trials: int
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
class EmailConfig:
    enabled: bool
    send_at: str
    timezone: str
    smtp_host: str
    smtp_port: int
    security: str
    ca_file: str
    user: str
    password: str = dataclasses.field(repr=False)
    sender: str
    recipients: str
    timeout_s: float
    attempts: int
    backoff_s: float

    def __post_init__(self) -> None:
        if self.enabled and not self.to:
            raise ConfigError("email.recipients: required when email.enabled is true")

    @property
    def to(self) -> tuple[str, ...]:
        return split_list(self.recipients)

    @property
    def send_time(self) -> time:
        return time.fromisoformat(self.send_at)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclasses.dataclass(frozen=True)
class AuthConfig:
    mode: str
    issuer: str
    audience: str
    roles_claim: str
    admin_role: str
    viewer_role: str
    api_tokens: str = dataclasses.field(repr=False)
    jwks_refresh_min_s: float
    leeway_s: float
    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    scopes: str
    session_secret: str = dataclasses.field(repr=False)
    session_max_age_s: int
    public_url: str

    @property
    def admin_ui(self) -> bool:
        """The admin UI is served: without login in mode none, else only with a client to sign operators in."""
        return self.mode == "none" or bool(self.client_id)

    @property
    def admin_ui_login(self) -> bool:
        """The admin UI signs operators in through the provider (else, in mode none, everyone on loopback is admin)."""
        return self.mode == "oidc" and bool(self.client_id)


@dataclasses.dataclass(frozen=True)
class Config:
    mongo: MongoConfig
    http: HttpConfig
    sender: SenderConfig
    dispatch: DispatchConfig
    planner: PlannerConfig
    probe: ProbeConfig
    log: LogConfig
    auth: AuthConfig
    email: EmailConfig

    def replace(self, **sections: Any) -> Config:
        """A copy with some keys changed, e.g. ``replace(dispatch={"concurrency": 5})``."""
        changed = {name: dataclasses.replace(getattr(self, name), **values) for name, values in sections.items()}
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
    "http.stats_max_age_s": (lambda v: v >= 0, "zero or more"),
    "http.import_max_mb": (_positive, "at least 1"),
    "probe.port": (lambda v: 0 < v < 65536, "a TCP port"),
    "mongo.timeout_s": (_positive, "positive"),
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
    "dispatch.start_concurrency": (_positive, "at least 1"),
    "dispatch.min_concurrency": (_positive, "at least 1"),
    "dispatch.breaker_trials": (_positive, "at least 1"),
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
    "email.send_at": (lambda v: re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v), "a time of day HH:MM"),
    "email.timezone": (_is_zone, "an IANA time zone name"),
    "email.smtp_port": (lambda v: 0 < v < 65536, "a TCP port"),
    "email.security": (lambda v: v in {"none", "starttls", "tls"}, "none, starttls or tls"),
    "email.sender": (_is_address, "an email address"),
    "email.recipients": (lambda v: all(_is_address(a) for a in split_list(v)), "comma-separated email addresses"),
    "email.timeout_s": (_positive, "positive"),
    "email.attempts": (_positive, "at least 1"),
    "email.backoff_s": (lambda v: v >= 0, "zero or more"),
    "http.cors_origins": (
        lambda v: all(o == "*" or re.fullmatch(r"https?://[^/\s,]+", o) for o in split_list(v)),
        "comma-separated origins (scheme://host[:port], no path) or *",
    ),
    "auth.mode": (lambda v: v in {"none", "oidc"}, "none or oidc"),
    "auth.api_tokens": (
        lambda v: re.fullmatch(r"\s*((admin|viewer):[0-9a-fA-F]{64}\s*(,\s*|$))*", v),
        "comma-separated role:sha256hex entries, role admin or viewer",
    ),
    "auth.jwks_refresh_min_s": (lambda v: v >= 0, "zero or more"),
    "auth.leeway_s": (lambda v: v >= 0, "zero or more"),
    "auth.session_max_age_s": (_positive, "at least 1"),
    "auth.public_url": (
        lambda v: not v or (v.startswith(("http://", "https://")) and not urlsplit(v).path.strip("/")),
        "empty or an http(s):// URL without a path",
    ),
    "mongo.url": (
        lambda v: v.startswith(("mongodb://", "mongodb+srv://")) and urlsplit(v).path.strip("/"),
        "a mongodb:// URL with the database name as its path",
    ),
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
    config = Config(**sections)
    _check_auth(config)
    return config


def _check_auth(config: Config) -> None:
    """Refuse a configuration that would let anyone who reaches the port change everything."""
    auth = config.auth
    if auth.mode == "none":
        if not _is_loopback(config.http.host):
            raise ConfigError(
                f"auth.mode: none is only allowed when http.host is a loopback address, "
                f"got {config.http.host!r}; set auth.mode: oidc"
            )
        return
    for key in ("issuer", "audience"):
        if not getattr(auth, key):
            raise ConfigError(f"auth.{key}: required when auth.mode is oidc")
    if auth.client_id and not auth.session_secret:
        raise ConfigError("auth.session_secret: required when auth.client_id enables the admin UI login")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
