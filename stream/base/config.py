"""Settings of every finsent component: where they come from, and the checks around them.

Sources, lowest to highest precedence:

1. the defaults (the embedded local stack under ``.finsent/``);
2. an optional ``finsent.toml`` in the working directory (or the file named by
   ``FINSENT_CONFIG``): top-level keys are the field names of :class:`Settings`,
   tables ``[alerts]`` and ``[stack]`` the nested ones;
3. environment variables ``FINSENT_<FIELD>`` (``FINSENT_ALERTS_<FIELD>`` and
   ``FINSENT_STACK_<FIELD>`` for the nested ones).

A child process started with :func:`settings_to_env` reads its parent's whole resolved settings from
``FINSENT_SETTINGS_JSON`` in place of ``finsent.toml``.

The fields, their types, ranges and documentation are defined once, in :mod:`stream.base.settings`
(pydantic-settings).  This module stays light: it does not import pydantic until settings are
loaded, so ``finsent --help`` and ``finsent classify`` (:func:`peek_settings`) start without it.
``Settings``, ``AlertSettings`` and ``StackSettings`` are importable from here as before (loaded on
first use).

The names fixed by DESIGN.md are ``FINSENT_KAFKA``, ``FINSENT_DATABASE_URL``,
``FINSENT_ALERT_URLS``, ``FINSENT_MODEL`` and ``FINSENT_STATE_DIR``.

This module only reads configuration; it never touches the network.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stream.base.dsn import InvalidDSN, dsn_params
from stream.base.errors import UserError
from stream.base.redact import redact

if TYPE_CHECKING:
    from stream.base.settings import AlertSettings, Settings, StackSettings

__all__ = [
    "MACHINE_ENV",
    "SETTINGS_ENV",
    "AlertSettings",
    "ConfigError",
    "MachineSettings",
    "RawSettings",
    "Settings",
    "StackSettings",
    "default_secrets_outside_loopback",
    "load_settings",
    "machine_settings",
    "peek_settings",
    "refuse_default_secrets",
    "settings_as_dict",
    "settings_env_keys",
    "settings_to_env",
]

SETTINGS_ENV = "FINSENT_SETTINGS_JSON"  # a parent's whole settings, for a child process
SCHEMA_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"  # a PostgreSQL schema finsent uses: a plain identifier
_MODELS = ("Settings", "AlertSettings", "StackSettings")


class ConfigError(UserError, ValueError):
    """A configuration value is missing or malformed: one line naming the key, the value (secrets
    masked) and what is allowed."""


def __getattr__(name: str) -> Any:
    """``Settings``, ``AlertSettings``, ``StackSettings``: imported from :mod:`stream.base.settings`
    (and pydantic) on first use, not with this module."""
    if name in _MODELS:
        from stream.base import settings

        return getattr(settings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- sources
def file_values(env: Mapping[str, str], config_file: str | Path | None = None) -> tuple[dict[str, Any], str]:
    """The settings file's values (``finsent.toml`` shape) and its name for messages: the parent's
    ``FINSENT_SETTINGS_JSON`` when set (and no file is named), else ``config_file``,
    ``FINSENT_CONFIG`` or ``./finsent.toml`` (none: no values)."""
    if SETTINGS_ENV in env and config_file is None:
        try:
            whole = json.loads(env[SETTINGS_ENV])
        except ValueError as exc:
            raise ConfigError(f"{SETTINGS_ENV}: {exc}") from None
        if not isinstance(whole, dict):
            raise ConfigError(f"{SETTINGS_ENV}: not a JSON object")
        return whole, SETTINGS_ENV
    named = config_file or env.get("FINSENT_CONFIG")
    path = Path(named or "finsent.toml")
    if path.is_file():
        try:
            return tomllib.loads(path.read_text(encoding="utf-8")), str(path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    if named:
        raise ConfigError(f"config file not found: {path}")
    return {}, str(path)


def load_settings(env: Mapping[str, str] | None = None, config_file: str | Path | None = None) -> Settings:
    """Resolve settings from the defaults, ``finsent.toml`` (or ``FINSENT_SETTINGS_JSON``) and the
    environment; a wrong value raises :class:`ConfigError` (one line)."""
    from stream.base.settings import resolve

    env = dict(os.environ if env is None else env)
    values, origin = file_values(env, config_file)
    return resolve(env, values, origin)


class RawSettings:
    """A few plain-text settings read from the same sources, with the same precedence, as
    :func:`load_settings`, without pydantic and without checking the other keys: for the commands
    whose start-up is a target (``finsent classify``).  Unset is ``None``: the reader's own default
    applies (the same as the settings' default; ``tests/unit/stream/base`` checks that)."""

    FIELDS = ("model", "device", "aliases", "watchlist")

    def __init__(self, env: Mapping[str, str], values: Mapping[str, Any]) -> None:
        lower = {k.lower(): v for k, v in env.items() if v != ""}  # an empty variable counts as unset
        for name in self.FIELDS:
            raw = lower.get(f"finsent_{name}", values.get(name))
            setattr(self, name, None if raw is None or str(raw).strip() == "" else str(raw))

    def secret_values(self) -> tuple[str, ...]:
        return ()


def peek_settings(env: Mapping[str, str] | None = None, config_file: str | Path | None = None) -> RawSettings:
    """:class:`RawSettings` of this process (see there)."""
    env = dict(os.environ if env is None else env)
    return RawSettings(env, file_values(env, config_file)[0])


# --------------------------------------------------------------------------- child processes
def settings_as_dict(settings: Settings) -> dict[str, Any]:
    """The settings as plain JSON/TOML values in the shape of ``finsent.toml``, secrets in clear (for a
    child process: never print it); :func:`load_settings` reads it back to an equal object."""
    return settings.plain()


def settings_env_keys() -> frozenset[str]:
    """Every environment variable :func:`load_settings` maps to a field."""
    from stream.base.settings import env_names

    return frozenset(env_names()) | {SETTINGS_ENV}


def settings_to_env(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (a process environment) without its settings variables, plus the whole ``settings``
    in ``FINSENT_SETTINGS_JSON``: a child ``finsent`` process resolves exactly these settings."""
    keys = {k.upper() for k in settings_env_keys()}
    env = {k: v for k, v in base.items() if k.upper() not in keys}
    env[SETTINGS_ENV] = json.dumps(settings_as_dict(settings))
    return env


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
_MACHINE_TEXT = ("kafka_heap", "event_loop")  # the others are paths


def machine_settings(env: Mapping[str, str] | None = None) -> MachineSettings:
    """:class:`MachineSettings` from the environment (read at each call: tests and ``finsent`` set
    some of these variables at run time)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {name: env[key] if name in _MACHINE_TEXT else Path(env[key]).expanduser()
                              for name, key in MACHINE_ENV.items() if env.get(key)}
    if "cache_dir" not in values:
        values["cache_dir"] = Path(env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "finsent"
    return MachineSettings(**values)


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
        params = dsn_params(settings.dsn)
    except InvalidDSN:  # cannot happen for loaded settings: the DSN is checked when they are read
        return []
    hosts = (params.get("host") or params.get("hostaddr") or "").split(",")
    if all(_is_loopback(h.strip() or None) for h in hosts):
        return []
    found = []
    password = params.get("password")
    if password is not None and (password in DEFAULT_PASSWORDS or password == params.get("user")):
        found.append("the password in database_url (FINSENT_DATABASE_URL)")
    if settings.writer_password.get_secret_value() in DEFAULT_PASSWORDS:
        found.append("writer_password (FINSENT_WRITER_PASSWORD)")
    if settings.analyst_password.get_secret_value() in DEFAULT_PASSWORDS and not settings.analyst_database_url:
        found.append("analyst_password (FINSENT_ANALYST_PASSWORD)")
    return found


def refuse_default_secrets(settings: Settings) -> None:
    """Raise a :class:`ConfigError` when :func:`default_secrets_outside_loopback` finds any."""
    found = default_secrets_outside_loopback(settings)
    if found:
        raise ConfigError(
            f"the database at {redact(settings.dsn)} is not on the loopback, but "
            + ", ".join(found) + " still has its shipped default: set your own (finsent.toml or the environment)"
        )
