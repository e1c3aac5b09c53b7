"""Typed settings for every finsent component.

Sources, lowest to highest precedence:

1. the defaults below (the embedded local stack under ``.finsent/``);
2. an optional ``finsent.toml`` in the working directory (or the file named by
   ``FINSENT_CONFIG``): top-level keys are the field names of :class:`Settings`,
   sections ``[alerts]`` and ``[stack]`` map to the nested dataclasses;
3. environment variables ``FINSENT_<FIELD>`` (``FINSENT_ALERTS_<FIELD>`` and
   ``FINSENT_STACK_<FIELD>`` for the nested ones).

The names fixed by DESIGN.md are ``FINSENT_KAFKA``, ``FINSENT_DATABASE_URL``,
``FINSENT_ALERT_URLS``, ``FINSENT_MODEL`` and ``FINSENT_STATE_DIR``.

This module only reads configuration; it never touches the network.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote, urlsplit, urlunsplit

from psycopg2.extensions import parse_dsn


class ConfigError(ValueError):
    """A configuration value is missing or malformed (message names the key)."""


@dataclass(frozen=True)
class StackSettings:
    """Ports and credentials of the embedded local stack (``finsent up``)."""

    kafka_port: int = 19092
    controller_port: int = 19093
    postgres_port: int = 15432
    postgres_user: str = "finsent"
    postgres_password: str = "finsent"
    postgres_db: str = "finsent"
    kafka_version: str = "4.1.1"


@dataclass(frozen=True)
class AlertSettings:
    """Spike detection and delivery thresholds (see alerts/)."""

    window_s: int = 300  # event-time window length
    lateness_s: int = 60  # allowed lateness: watermark = max event time - lateness
    min_negative: int = 5  # minimum negative articles in the window
    min_share: float = 0.4  # minimum negative share of the window's articles
    z_threshold: float = 5.0  # z-score over the EWMA baseline (calibrated: ~3e-7 per window and scope)
    ewma_alpha: float = 0.1  # weight of the newest window in the baseline
    baseline_windows: int = 288  # how many earlier windows feed the baseline (1 day)
    min_std: float = 0.3  # floor of the baseline (expected >= min_std**2 negatives per window)
    cooldown_s: int = 1800  # per scope, after an alert
    top_articles: int = 5  # ids of the most negative articles kept with an alert
    retry_initial_s: float = 1.0  # delivery backoff
    retry_max_s: float = 300.0
    step_s: int = 60  # windows slide by this much (a multiple of 60 dividing window_s)
    warmup_windows: int = 6  # observed earlier windows needed before a scope can fire
    idle_s: float = 60.0  # a watermark source (partition) silent this long stops holding the watermark
    catchup_s: int = 3600  # on a fresh start, how far back closed windows are still evaluated
    rewind_s: int = 3600  # a replay whose event time jumps back this far restarts its watermark
    scope_kinds: tuple[str, ...] = ("ticker", "topic")  # scopes watched ('all' = the whole market)
    poll_s: float = 1.0  # notifier: longest sleep between looks at the alerts table
    # time scales: 5m (the window keys above), 1h, 1d, or NAME=WINDOW_S/STEP_S[/BASELINE[/COOLDOWN[/anchored]]]
    scales: tuple[str, ...] = ("5m", "1h", "1d")
    market_scales: tuple[str, ...] = ("1h", "1d")  # scales at which the whole market ('all') is watched too
    incident_gap_s: int = 3600  # alerts of a scope at most this far apart (any scale) are one incident
    story_horizon_s: int = 86400  # near-duplicates within this much event time are one story
    story_threshold: float = 0.5  # MinHash Jaccard similarity from which two articles are one story


@dataclass(frozen=True)
class Settings:
    """Everything a finsent process needs to know, resolved once at start-up."""

    state_dir: Path = Path(".finsent")
    kafka: str | None = None  # bootstrap servers; None = local stack
    database_url: str | None = None  # None = local stack
    analyst_database_url: str | None = None  # None = derived from database_url
    writer_password: str = "finsent_writer"  # set by 'db upgrade' on role finsent_writer
    analyst_password: str = "finsent_analyst"  # set by 'db upgrade' on role finsent_analyst
    schema: str = "public"  # PostgreSQL schema the pipeline writes to
    alert_urls: tuple[str, ...] = ()
    alert_config: str | None = None  # apprise YAML/text config file
    model: str | None = None  # checkpoint dir; None = the shipped checkpoint
    aliases: str | None = None  # CSV ticker,alias
    watchlist: str = "all"  # tickers that make trends/alerts: all | sp500/sp100/nasdaq100/dow30 | topN | file
    topic_raw: str = "news.raw"
    topic_scored: str = "news.scored"
    topic_deadletter: str = "news.deadletter"
    publish_scored: bool = True  # fan scored records out to topic_scored
    partitions: int = 4
    replication: int = 1
    app_id: str = "finsent"  # Faust app id = consumer group
    max_batch: int = 64
    max_wait_s: float = 0.05
    web_port: int = 0  # Faust web / metrics port on 127.0.0.1; 0 = off
    metrics_port: int = 0  # Prometheus endpoint; 0 = off
    metrics_bind: str = "127.0.0.1"  # a container sets its own interface so Prometheus can scrape it
    dashboard_port: int = 18080  # finsent dashboard on 127.0.0.1 (--port overrides)
    log_every: int = 50  # batches between progress log lines
    device: str = "auto"  # auto | cpu | cuda
    stack: StackSettings = field(default_factory=StackSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)

    def __post_init__(self) -> None:
        # the state dir is resolved once, against the working directory at start-up
        object.__setattr__(self, "state_dir", Path(self.state_dir).expanduser().resolve())

    # -- derived values -------------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka or f"127.0.0.1:{self.stack.kafka_port}"

    @property
    def dsn(self) -> str:
        if self.database_url:
            return self.database_url
        s = self.stack
        return (
            f"postgresql://{s.postgres_user}:{s.postgres_password}"
            f"@127.0.0.1:{s.postgres_port}/{s.postgres_db}"
        )

    @property
    def analyst_dsn(self) -> str:
        """URL of the read-only ``finsent_analyst`` role on the same database."""
        if self.analyst_database_url:
            return self.analyst_database_url

        parts = urlsplit(self.dsn)
        host = parts.netloc.rsplit("@", 1)[-1]
        netloc = f"finsent_analyst:{quote(self.analyst_password, safe='')}@{host}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def uses_local_kafka(self) -> bool:
        return self.kafka is None

    @property
    def uses_local_postgres(self) -> bool:
        return self.database_url is None

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


_NESTED = {"alerts": AlertSettings, "stack": StackSettings}


def _coerce(name: str, raw: Any, typ: Any) -> Any:
    """Convert a TOML or environment value to the field's declared type."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in args if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            return None
        return _coerce(name, raw, inner[0])
    try:
        if typ is Path:
            return Path(raw).expanduser()
        if typ is bool:
            if isinstance(raw, bool):
                return raw
            return str(raw).strip().lower() in ("1", "true", "yes", "on")
        if typ is int:
            return int(raw)
        if typ is float:
            return float(raw)
        if typ is str:
            return str(raw)
        if origin is tuple:
            if isinstance(raw, str):
                parts = [p.strip() for p in raw.replace("\n", ",").split(",")]
                return tuple(p for p in parts if p)
            return tuple(str(x) for x in raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid value for {name}: {raw!r} ({exc})") from None
    return raw


def _build(cls: type, prefix: str, toml: Mapping[str, Any], env: Mapping[str, str]):
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}".upper()
        if f.name in _NESTED and cls is Settings:
            section = toml.get(f.name, {})
            if not isinstance(section, dict):
                raise ConfigError(f"[{f.name}] in finsent.toml must be a table")
            values[f.name] = _build(_NESTED[f.name], f"FINSENT_{f.name}_", section, env)
            continue
        if key in env:
            values[f.name] = _coerce(key, env[key], hints[f.name])
        elif f.name in toml:
            values[f.name] = _coerce(f.name, toml[f.name], hints[f.name])
    unknown = set(toml) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ConfigError(f"unknown key(s) in finsent.toml: {', '.join(sorted(unknown))}")
    return cls(**values)


def load_settings(
    env: Mapping[str, str] | None = None, config_file: str | Path | None = None
) -> Settings:
    """Resolve settings from defaults, ``finsent.toml`` and the environment.

    A child process started with :func:`settings_to_env` gets its parent's whole resolved settings
    from ``FINSENT_SETTINGS_JSON`` instead of a ``finsent.toml`` (same shape, same coercion); the
    other ``FINSENT_<FIELD>`` variables of its environment still override single fields."""
    env = dict(os.environ if env is None else env)
    if SETTINGS_ENV in env and config_file is None:
        try:
            whole = json.loads(env[SETTINGS_ENV])
        except ValueError as exc:
            raise ConfigError(f"{SETTINGS_ENV}: {exc}") from None
        return _build(Settings, "FINSENT_", whole, env)
    path = Path(config_file or env.get("FINSENT_CONFIG") or "finsent.toml")
    toml: dict[str, Any] = {}
    if path.is_file():
        try:
            toml = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    elif config_file or env.get("FINSENT_CONFIG"):
        raise ConfigError(f"config file not found: {path}")
    return _build(Settings, "FINSENT_", toml, env)


# --------------------------------------------------------------------------- this machine
@dataclass(frozen=True)
class MachineSettings:
    """Where this machine keeps things and how it runs them: environment variables only (not
    ``finsent.toml``, not part of :class:`Settings`; a child process inherits them with the
    environment).  The variable of each field is in :data:`MACHINE_ENV`."""

    kafka_heap: str = "-Xms256m -Xmx768m"  # JVM heap options of the local broker
    cache_dir: Path = Path("~/.cache/finsent")  # Kafka jars (unset: $XDG_CACHE_HOME/finsent or ~/.cache/finsent)
    pg_bindir: Path | None = None  # PostgreSQL server binaries; None = the highest installed version
    pg_home: Path | None = None  # base of a cluster the state dir's owner cannot host; None = ~postgres/finsent
    data_dir: Path | None = None  # the shared data sets; None = ../shared/data
    quality_cache: Path = Path("/tmp/finsent-quality")  # scores cached by the alert-quality report
    teacher_dir: Path | None = None  # the distillation teacher; None = ~/.cache/finsent/all-mpnet-base-v2
    event_loop: str = "uvloop"  # the worker's event loop: uvloop or asyncio


MACHINE_ENV = {
    "kafka_heap": "FINSENT_KAFKA_HEAP",
    "cache_dir": "FINSENT_CACHE_DIR",
    "pg_bindir": "FINSENT_PG_BINDIR",
    "pg_home": "FINSENT_PG_HOME",
    "data_dir": "FINSENT_DATA",
    "quality_cache": "FINSENT_QUALITY_CACHE",
    "teacher_dir": "FINSENT_TEACHER_DIR",
    "event_loop": "FINSENT_EVENT_LOOP",
}


def machine_settings(env: Mapping[str, str] | None = None) -> MachineSettings:
    """:class:`MachineSettings` from the environment (read at each call: tests and ``finsent`` set
    some of these variables at run time)."""
    env = os.environ if env is None else env
    hints = typing.get_type_hints(MachineSettings)
    values: dict[str, Any] = {name: _coerce(key, env[key], hints[name])
                              for name, key in MACHINE_ENV.items() if env.get(key)}
    if "cache_dir" not in values:
        values["cache_dir"] = Path(env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "finsent"
    return MachineSettings(**values)


SETTINGS_ENV = "FINSENT_SETTINGS_JSON"  # a parent's whole settings, for a child process


def settings_as_dict(settings: Settings) -> dict[str, Any]:
    """The settings as plain JSON/TOML values, in the shape of ``finsent.toml`` (sections for
    ``alerts`` and ``stack``); :func:`load_settings` reads it back to an equal object."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return {f.name: ({g.name: plain(getattr(value, g.name)) for g in dataclasses.fields(value)}
                     if dataclasses.is_dataclass(value := getattr(settings, f.name)) else plain(value))
            for f in dataclasses.fields(settings)}


def settings_env_keys() -> frozenset[str]:
    """Every environment variable :func:`load_settings` maps to a field."""
    keys = {SETTINGS_ENV}
    for f in dataclasses.fields(Settings):
        if f.name in _NESTED:
            keys.update(f"FINSENT_{f.name}_{g.name}".upper() for g in dataclasses.fields(_NESTED[f.name]))
        else:
            keys.add(f"FINSENT_{f.name}".upper())
    return frozenset(keys)


def settings_to_env(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (a process environment) without its settings variables, plus the whole ``settings``
    in ``FINSENT_SETTINGS_JSON``: a child ``finsent`` process resolves exactly these settings."""
    keys = settings_env_keys()
    env = {k: v for k, v in base.items() if k not in keys}
    env[SETTINGS_ENV] = json.dumps(settings_as_dict(settings))
    return env


def redact_url(url: str) -> str:
    """Hide the password of a URL for logs and error messages."""

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


# --------------------------------------------------------------------------- default secrets
DEFAULT_PASSWORDS = frozenset({"", "finsent", "finsent_writer", "finsent_analyst", "postgres", "password"})


def _is_loopback(host: str | None) -> bool:
    if not host or host.startswith("/"):  # no host: the Unix socket of this machine
        return True

    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_secrets_outside_loopback(settings: Settings) -> list[str]:
    """The settings still at a shipped default password while the database is not on this
    machine's loopback (the local stack is): the pipeline refuses to start with any of them."""
    if settings.uses_local_postgres:
        return []

    try:
        params = parse_dsn(settings.dsn)
    except Exception:  # noqa: BLE001 - an unparseable URL fails later with its own message
        return []
    hosts = (params.get("host") or params.get("hostaddr") or "").split(",")
    if all(_is_loopback(h.strip() or None) for h in hosts):
        return []
    found = []
    password = params.get("password")
    if password is not None and (password in DEFAULT_PASSWORDS or password == params.get("user")):
        found.append("the password in database_url (FINSENT_DATABASE_URL)")
    if settings.writer_password in DEFAULT_PASSWORDS:
        found.append("writer_password (FINSENT_WRITER_PASSWORD)")
    if settings.analyst_password in DEFAULT_PASSWORDS and not settings.analyst_database_url:
        found.append("analyst_password (FINSENT_ANALYST_PASSWORD)")
    return found


def refuse_default_secrets(settings: Settings) -> None:
    """Raise a :class:`ConfigError` when :func:`default_secrets_outside_loopback` finds any."""
    found = default_secrets_outside_loopback(settings)
    if found:
        raise ConfigError(
            f"the database at {redact_url(settings.dsn)} is not on the loopback, but "
            + ", ".join(found) + " still has its shipped default: set your own (finsent.toml or the environment)"
        )
