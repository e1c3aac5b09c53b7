"""Every setting of finsent, defined once: its type, its range, its default and what it means.

The README's Configuration table is generated from the fields below
(``python -m stream.base.settings --readme README.md``; a unit test checks it is current).  Code
reads settings through :func:`stream.base.config.load_settings`, which gathers the sources (see
there) and calls :func:`resolve`.  ``Settings(...)`` in code (tests) holds the defaults and the given
values only: no environment, no file.

Secrets (database URLs, passwords, apprise URLs) are :class:`pydantic.SecretStr`: ``repr``,
``str`` and ``model_dump`` show ``**********``; code that connects calls ``get_secret_value()``
(or uses :attr:`Settings.dsn` / :attr:`Settings.analyst_dsn`, which are plain strings).
"""

from __future__ import annotations

import argparse
import contextvars
import json
import re
import sys
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Self, cast, get_args, get_origin

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from stream.base.config import DEFAULT_PASSWORDS, SCHEMA_PATTERN, ConfigError
from stream.base.dsn import dsn_params, redact_dsn, with_login
from stream.base.labels import SCOPE_KINDS
from stream.base.redact import MASK, redact, url_token_parts

if TYPE_CHECKING:
    from pydantic.config import JsonDict

ANALYST_ROLE = "finsent_analyst"  # the read-only role (storage/db.py), created by 'finsent db upgrade'
SECTIONS = ("stack", "alerts", "feeds")
TOPIC_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"  # Kafka's legal topic names
PORT = "a port, 1 to 65535"
PORT_OR_OFF = "a port, 1 to 65535, or 0 (off)"


def setting(default: Any, meaning: str, *, allowed: str | None = None, shown: str | None = None,
            secret: str | None = None, **constraints: Any) -> Any:
    """A field with its one documentation: ``meaning`` (README), ``allowed`` (README and errors; derived
    from the type and ``constraints`` when not given), ``shown`` (the README's default, when the value
    itself says little), ``secret`` (``password``, ``dsn`` or ``url``: how an error shows the value)."""
    extra: JsonDict = {k: v for k, v in (("allowed", allowed), ("shown", shown), ("secret", secret)) if v is not None}
    return Field(default, description=meaning, json_schema_extra=extra or None, **constraints)


# --------------------------------------------------------------------------- value types
def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _items(value: Any) -> Any:
    """A list: TOML and JSON arrays as they are; a string (the environment) split at commas and newlines."""
    if isinstance(value, str):
        return tuple(p.strip() for p in value.replace("\n", ",").split(",") if p.strip())
    return value


def _valid_dsn(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        dsn_params(value.get_secret_value())  # InvalidDSN (a ValueError, never quoting the string)
    return value


OptionalText = Annotated[str | None, BeforeValidator(_blank_is_none)]
Items = Annotated[tuple[str, ...], BeforeValidator(_items)]
DSN = Annotated[SecretStr | None, BeforeValidator(_blank_is_none), AfterValidator(_valid_dsn)]
SecretItems = Annotated[tuple[SecretStr, ...], BeforeValidator(_items)]


class _Replace:
    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, checked like loaded settings (:class:`ConfigError` if one is wrong)."""
        try:
            return type(self).model_validate({**self.__dict__, **changes})  # type: ignore[attr-defined,no-any-return]
        except ValidationError as exc:
            raise ConfigError(explain(exc, {}, {}, "", model=cast("type[BaseModel]", type(self)))) from None


class _Section(_Replace, BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True, validate_default=True)


# --------------------------------------------------------------------------- [stack]
class StackSettings(_Section):
    """Ports and credentials of the embedded local stack (``finsent up``): the ``[stack]`` table."""

    kafka_port: int = setting(19092, "port of the local broker, on 127.0.0.1", allowed=PORT, ge=1, le=65535)
    controller_port: int = setting(19093, "port of the local broker's KRaft controller, on 127.0.0.1",
                                   allowed=PORT, ge=1, le=65535)
    postgres_port: int = setting(15432, "port of the local PostgreSQL, on 127.0.0.1", allowed=PORT, ge=1, le=65535)
    postgres_user: str = setting("finsent", "superuser of the local cluster", min_length=1)
    postgres_password: SecretStr = setting(SecretStr("finsent"), "its password", secret="password", min_length=1)
    postgres_db: str = setting("finsent", "database of the local cluster", min_length=1)
    kafka_version: str = setting("4.1.1", "Apache Kafka release fetched from Maven Central",
                                 allowed="a release number X.Y.Z", pattern=r"^\d+\.\d+\.\d+$")


# --------------------------------------------------------------------------- [alerts]
class AlertSettings(_Section):
    """Spike detection and delivery (see alerts/): the ``[alerts]`` table."""

    window_s: int = setting(300, "event-time window length (seconds)", gt=0, multiple_of=60)
    step_s: int = setting(60, "windows slide by this much (dividing `window_s`)", gt=0, multiple_of=60)
    lateness_s: int = setting(60, "allowed lateness: watermark = latest event time - lateness", ge=0)
    min_negative: int = setting(5, "minimum negative articles in a window", ge=1)
    min_share: float = setting(0.4, "minimum negative share of the window's articles", ge=0, le=1)
    z_threshold: float = setting(5.0, "z-score over the scope's EWMA baseline (calibrated: about 3e-7 per "
                                      "window and scope)", gt=0)
    ewma_alpha: float = setting(0.1, "baseline: weight of the newest window", gt=0, le=1)
    baseline_windows: int = setting(288, "baseline: how many earlier windows feed it (288 = one day)", ge=1)
    min_std: float = setting(0.3, "baseline: floor of its standard deviation (at least `min_std`^2 negatives "
                                  "expected per window)", gt=0)
    warmup_windows: int = setting(6, "observed earlier windows needed before a scope may fire", ge=0)
    cooldown_s: int = setting(1800, "per scope, after an alert (seconds)", ge=0)
    top_articles: int = setting(5, "most negative article ids kept with an alert", ge=0)
    retry_initial_s: float = setting(1.0, "delivery backoff: first delay (seconds)", gt=0)
    retry_max_s: float = setting(300.0, "delivery backoff: longest delay (seconds, >= `retry_initial_s`)", gt=0)
    idle_s: float = setting(60.0, "a partition silent this long stops holding the watermark (seconds)", gt=0)
    catchup_s: int = setting(3600, "on a fresh start, how far back closed windows are still evaluated "
                                   "(seconds)", ge=0)
    rewind_s: int = setting(3600, "a replay whose event time jumps back this far restarts its watermark "
                                  "(seconds)", gt=0)
    scope_kinds: Items = setting(("ticker", "topic"), "scopes watched (`all` = the whole market)",
                                 allowed=f"a list of {', '.join(SCOPE_KINDS)}")
    poll_s: float = setting(1.0, "notifier: longest sleep between looks at the alerts table (seconds)", gt=0)
    scales: Items = setting(("5m", "1h", "1d"), "time scales: `5m` (the window keys above), `1h` (sliding hour "
                                                "every 5 min, baseline one week), `1d` (the UTC day so far, every "
                                                "hour, baseline 30 days), or "
                                                "`NAME=WINDOW_S/STEP_S[/BASELINE_WINDOWS[/COOLDOWN_S[/anchored]]]`",
                            allowed="a list of scales")
    market_scales: Items = setting(("1h", "1d"), "scales at which the whole market (`all`) is watched as well",
                                   allowed="a list of scale names")
    incident_gap_s: int = setting(3600, "alerts of one scope (any scale) whose windows overlap or follow within "
                                        "this gap are one incident: only the first is sent (seconds)", ge=0)
    story_horizon_s: int = setting(86400, "story novelty: near-duplicates within this much event time are one "
                                          "story (seconds)", gt=0)
    story_threshold: float = setting(0.5, "story novelty: MinHash Jaccard similarity from which two articles are "
                                          "one story", gt=0, le=1)

    @field_validator("scope_kinds")
    @classmethod
    def _known_kinds(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        bad = [k for k in kinds if k not in SCOPE_KINDS]
        if bad:
            raise ValueError(f"unknown scope kind(s) {', '.join(bad)}")
        return kinds

    @model_validator(mode="after")
    def _backoff_grows(self) -> Self:
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError(f"retry_max_s ({self.retry_max_s}) is below retry_initial_s ({self.retry_initial_s})")
        return self


# --------------------------------------------------------------------------- [feeds]
FEED_KINDS = ("rss", "atom", "edgar")
FEED_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
CATALOGUE_FILE = Path(__file__).resolve().parent / "feeds.toml"  # the shipped catalogue, documented there


class FeedSpec(_Section):
    """One source of the catalogue: a table ``[feeds.catalogue.NAME]``."""

    url: str = setting(..., "the feed's address (`https://...`, or a local file)", allowed="a URL", min_length=1)
    kind: str = setting(..., "`rss`, `atom`, or `edgar` (SEC EDGAR's current-filings Atom: filings as news, "
                             "tickers by CIK)", allowed=", ".join(FEED_KINDS), pattern=r"^(rss|atom|edgar)$")
    enabled: bool = setting(True, "polled by `finsent ingest` with no URL")
    interval_s: float = setting(300.0, "seconds between polls (plus or minus `feeds.jitter` of it)", ge=10)
    title: str = setting("", "the articles' `source` (empty: the feed's own title)", allowed="text")
    terms: str = setting("", "the publisher's licence or terms of use, in a line", allowed="text")


@lru_cache(maxsize=1)
def shipped_catalogue() -> dict[str, dict[str, Any]]:
    """The shipped catalogue (``stream/base/feeds.toml``): feed name -> its keys."""
    data = tomllib.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))
    return {name: dict(spec) for name, spec in data["feeds"]["catalogue"].items()}


class FeedSettings(_Section):
    """Live sources (``finsent ingest``): the ``[feeds]`` table; the feeds themselves are
    ``[feeds.catalogue.NAME]`` tables over the shipped catalogue."""

    user_agent: str = setting("finsent/0.1 news poller", "User-Agent of every feed request; SEC EDGAR requires "
                                                         "your name and a contact e-mail in it (`Acme Research "
                                                         "ops@acme.example`), else its feeds are not polled",
                              min_length=1)
    timeout_s: float = setting(20.0, "a feed request gives up after this long (connect, each read and the whole "
                                     "download; seconds)", gt=0)
    max_bytes: int = setting(5_000_000, "largest feed document read (bytes); a larger one is a failed poll",
                             ge=1024)
    jitter: float = setting(0.1, "share of a feed's interval added or taken at random from each wait",
                            ge=0, le=0.5)
    backoff_max_s: float = setting(3600.0, "longest wait after failures: a failing feed waits its interval, "
                                           "then twice as long each time, at most this (seconds; a longer "
                                           "`Retry-After` is honoured up to a day)", ge=10)
    unhealthy_after: int = setting(3, "consecutive failed polls after which a feed is unhealthy (red on the "
                                      "dashboard, `finsent status`)", ge=1)
    host_rate: float = setting(1.0, "requests per second to one host, at most (feeds of one publisher share it)",
                               gt=0)
    host_rates: Items = setting(("www.sec.gov=10",), "per-host exceptions to `host_rate`, `HOST=RATE` (EDGAR's "
                                                     "published limit is 10 requests per second)",
                                allowed="a list of HOST=RATE")
    metrics_port: int = setting(0, "Prometheus endpoint `/metrics` of `finsent ingest` (feed health per feed), "
                                   "on `metrics_bind`", shown="`0` (off)", allowed=PORT_OR_OFF, ge=0, le=65535)
    catalogue: dict[str, FeedSpec] = Field(
        default_factory=cast("Callable[[], dict[str, FeedSpec]]", shipped_catalogue),  # plain tables, validated
        description="the sources `finsent ingest` polls with no URL: a table "
        "`[feeds.catalogue.NAME]` per feed, over the shipped ones (only the keys given change)",
        json_schema_extra={"shown": "the shipped catalogue, `stream/base/feeds.toml`",
                           "allowed": "tables of url, kind, enabled, interval_s, title, terms (a JSON object in "
                                      "the environment)"})

    @field_validator("catalogue", mode="before")
    @classmethod
    def _over_the_shipped(cls, value: Any) -> Any:
        """The user's tables over the shipped catalogue: a known name changes only the keys given, a new
        name adds a feed (url and kind required)."""
        if isinstance(value, str):  # the environment: a JSON object
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ValueError(f"not a JSON object: {exc}") from None
        if not isinstance(value, Mapping):
            raise ValueError("a table of feeds, [feeds.catalogue.NAME]")
        merged: dict[str, Any] = {name: dict(spec) for name, spec in shipped_catalogue().items()}
        for name, spec in value.items():
            if isinstance(spec, FeedSpec):
                spec = spec.model_dump()
            if not isinstance(spec, Mapping):
                raise ValueError(f"feed {name!r} must be a table of keys")
            if not re.match(FEED_NAME_PATTERN, str(name)):
                raise ValueError(f"feed name {str(name)[:80]!r}: lower-case letters, digits, '.', '_', '-' "
                                 "(at most 63)")
            merged[name] = {**merged.get(name, {}), **spec}
        return merged

    @field_validator("host_rates")
    @classmethod
    def _host_rates(cls, items: tuple[str, ...]) -> tuple[str, ...]:
        host_rate_map(items)
        return items

    def rate_of(self, host: str) -> float:
        """Requests per second allowed to ``host``."""
        return host_rate_map(self.host_rates).get(host.lower(), self.host_rate)

    def enabled(self) -> dict[str, FeedSpec]:
        return {name: spec for name, spec in self.catalogue.items() if spec.enabled}


def host_rate_map(items: tuple[str, ...]) -> dict[str, float]:
    """``("www.sec.gov=10",)`` -> ``{"www.sec.gov": 10.0}`` (ValueError for a malformed item)."""
    out = {}
    for item in items:
        host, sep, rate = item.partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = -1.0
        if not sep or not host.strip() or not value > 0:
            raise ValueError(f"{item!r} is not HOST=RATE with a rate > 0")
        out[host.strip().lower()] = value
    return out


# --------------------------------------------------------------------------- the settings
_INPUT: contextvars.ContextVar[tuple[Mapping[str, str], Mapping[str, Any]] | None] = \
    contextvars.ContextVar("finsent_settings_input", default=None)


class _Environment(EnvSettingsSource):
    """``FINSENT_<KEY>`` of a given environment (not necessarily ``os.environ``); names match in any
    case, and an empty variable counts as unset."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items() if v != ""}


def _without_blanks(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _without_blanks(v) if isinstance(v, Mapping) else v for k, v in values.items()
            if not (isinstance(v, str) and not v.strip())}


class _FileValues(PydanticBaseSettingsSource):
    """``finsent.toml``'s values, or a parent's ``FINSENT_SETTINGS_JSON``; an empty string counts as
    unset, as an empty variable does."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = _without_blanks(values)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


with warnings.catch_warnings():
    # the field 'schema' shadows BaseModel.schema(), pydantic v1's deprecated name of model_json_schema()
    warnings.filterwarnings("ignore", message='Field name "schema"', category=UserWarning)

    class Settings(_Replace, BaseSettings):
        """Everything a finsent process needs to know, resolved once at start-up."""

        model_config = SettingsConfigDict(
            env_prefix="FINSENT_", env_nested_delimiter="_", env_nested_max_split=1, case_sensitive=False,
            extra="forbid", frozen=True, enable_decoding=False, coerce_numbers_to_str=True)

        kafka: OptionalText = setting(None, "Kafka bootstrap servers", shown="local stack `127.0.0.1:19092`",
                                      allowed="host:port[,host:port...]")
        database_url: DSN = setting(
            None, "PostgreSQL connection string of the pipeline (it `SET ROLE`s to `finsent_writer`): a URL or "
                  "libpq `key=value` pairs; without a password, libpq's `PGPASSWORD` or passfile supplies it",
            shown="local stack `postgresql://finsent:finsent@127.0.0.1:15432/finsent`", secret="dsn",
            allowed="a postgresql:// URL or libpq key=value pairs")
        analyst_database_url: DSN = setting(
            None, "connection string `finsent sql`, `plot` and `dashboard` use", secret="dsn",
            shown="derived: `finsent_analyst` with `analyst_password` on the same server (either form)",
            allowed="a postgresql:// URL or libpq key=value pairs")
        writer_password: SecretStr = setting(SecretStr("finsent_writer"), "password given to the `finsent_writer` "
                                             "role by `finsent db upgrade` / `up`", secret="password", min_length=1)
        analyst_password: SecretStr = setting(SecretStr("finsent_analyst"), "password given to the read-only "
                                              "`finsent_analyst` role", secret="password", min_length=1)
        # shadows BaseModel.schema(), pydantic v1's deprecated name of model_json_schema() (see the warning above)
        schema: str = setting("public", "PostgreSQL schema the pipeline writes to (replays may use their own)",  # type: ignore[assignment]
                              allowed="an identifier: letters, digits, _ (at most 63)", pattern=SCHEMA_PATTERN)
        alert_urls: SecretItems = setting((), "apprise URLs", shown="none", secret="url",
                                          allowed="a list (comma-separated in the environment)")
        alert_config: OptionalText = setting(None, "an apprise YAML/text config file (tags route scopes to channels)",
                                             allowed="a file")
        model: OptionalText = setting(None, "checkpoint directory", shown="`model/checkpoint/` (shipped)",
                                      allowed="a directory")
        device: str = setting("auto", "`auto` (CUDA when present), `cpu`, `cuda`",
                              allowed="auto, cpu, cuda or cuda:N", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
        aliases: OptionalText = setting(None, "CSV `ticker,alias`: your own names for a ticker, added to (or, with "
                                              "ticker `-`, removed from) the shipped alias table (see [Entity "
                                              "linking](#entity-linking))", allowed="a file")
        watchlist: str = setting("all", "tickers that make ticker trends and alerts: `all`, an index (`sp500`, "
                                        "`sp100`, `nasdaq100`, `dow30`), `topN` (the N largest issuers of the SEC "
                                        "reference, e.g. `top500`) or a file of tickers (first CSV column); "
                                        "mentions outside it are still stored in `articles.ticker_links`",
                                 allowed="all, an index, topN or a file")
        state_dir: Path = setting(Path(".finsent"), "local stack data, logs, plots, ingest state (resolved against "
                                                     "the working directory at start-up)",
                                  shown="`.finsent/`", allowed="a directory")
        topic_raw: str = setting("news.raw", "topic of incoming articles",
                                 allowed="a Kafka topic name", pattern=TOPIC_PATTERN)
        topic_scored: str = setting("news.scored", "topic of scored records",
                                    allowed="a Kafka topic name", pattern=TOPIC_PATTERN)
        topic_deadletter: str = setting("news.deadletter", "topic of records that could not be processed",
                                        allowed="a Kafka topic name", pattern=TOPIC_PATTERN)
        publish_scored: bool = setting(True, "fan stored records out to `topic_scored` (after the commit)")
        partitions: int = setting(4, "partitions of topics finsent creates (the unit of scale-out)", ge=1)
        replication: int = setting(1, "replication factor of topics finsent creates", ge=1)
        app_id: str = setting("finsent", "Faust app id = Kafka consumer group", min_length=1)
        max_batch: int = setting(64, "records per model batch", ge=1)
        max_wait_s: float = setting(0.05, "seconds a batch may wait to fill (batches still grow to `max_batch` "
                                          "while the model is busy; see Benchmarks for the latency against this "
                                          "value)", ge=0)
        log_every: int = setting(50, "batches between progress log lines", ge=1)
        web_port: int = setting(0, "Faust's web server, bound to 127.0.0.1", shown="`0` (off)", allowed=PORT_OR_OFF,
                                ge=0, le=65535)
        metrics_port: int = setting(0, "Prometheus endpoint `/metrics`", shown="`0` (off)", allowed=PORT_OR_OFF,
                                    ge=0, le=65535)
        metrics_bind: str = setting("127.0.0.1", "its address (a container sets its own interface)",
                                    allowed="an address", min_length=1)
        dashboard_port: int = setting(18080, "port of `finsent dashboard` on 127.0.0.1 (`--port` overrides)",
                                      allowed=PORT, ge=1, le=65535)
        stack: StackSettings = Field(default_factory=StackSettings, description="the `[stack]` table")
        alerts: AlertSettings = Field(default_factory=AlertSettings, description="the `[alerts]` table")
        feeds: FeedSettings = Field(default_factory=FeedSettings, description="the `[feeds]` table")

        @classmethod
        def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                       init_settings: PydanticBaseSettingsSource, env_settings: Any,
                                       dotenv_settings: Any, file_secret_settings: Any
                                       ) -> tuple[PydanticBaseSettingsSource, ...]:
            given = _INPUT.get()
            if given is None:  # Settings(...) in code: the defaults and the values passed, nothing else
                return (init_settings,)
            env, values = given
            return init_settings, _Environment(settings_cls, env), _FileValues(settings_cls, values)

        @field_validator("state_dir")
        @classmethod
        def _resolve_state_dir(cls, path: Path) -> Path:
            return Path(path).expanduser().resolve()  # once, against the working directory at start-up

        @field_validator("device", mode="before")
        @classmethod
        def _device_name(cls, value: Any) -> Any:
            return value.strip().lower() if isinstance(value, str) else value

        # -- derived values -------------------------------------------------
        @property
        def kafka_bootstrap(self) -> str:
            return self.kafka or f"127.0.0.1:{self.stack.kafka_port}"

        @property
        def dsn(self) -> str:
            """The pipeline's connection string (either form), secret included: connect with it, never
            print it (:func:`stream.base.redact.redact`)."""
            if self.database_url is not None:
                return self.database_url.get_secret_value()
            s = self.stack
            return (f"postgresql://{s.postgres_user}:{s.postgres_password.get_secret_value()}"
                    f"@127.0.0.1:{s.postgres_port}/{s.postgres_db}")

        @property
        def analyst_dsn(self) -> str:
            """The read-only ``finsent_analyst`` role on the same database, in the form of :attr:`dsn`."""
            if self.analyst_database_url is not None:
                return self.analyst_database_url.get_secret_value()
            return with_login(self.dsn, ANALYST_ROLE, self.analyst_password.get_secret_value())

        @property
        def uses_local_kafka(self) -> bool:
            return self.kafka is None

        @property
        def uses_local_postgres(self) -> bool:
            return self.database_url is None

        def secret_values(self) -> tuple[str, ...]:
            """Every configured secret that is not a shipped default (a default is no secret): the
            passwords, the connection strings and the passwords inside them, the apprise URLs and the
            parts of them that may be tokens (:func:`stream.base.redact.url_token_parts`)."""
            found: list[str] = []
            for value, kind in _secrets(self):
                found.append(value)
                if kind == "dsn":
                    params = dsn_params(value)
                    found += [params[k] for k in ("password", "sslpassword") if params.get(k)]
                elif kind == "url":
                    found += url_token_parts(value)
            return tuple(dict.fromkeys(v for v in found if v and v not in DEFAULT_PASSWORDS))

        def plain(self) -> dict[str, Any]:
            """Plain JSON/TOML values, secrets in clear (:func:`stream.base.config.settings_as_dict`)."""
            return _plain(self)  # type: ignore[no-any-return]


def _secrets(model: BaseModel) -> Iterator[tuple[str, str]]:
    """(value, kind) of every secret field of ``model`` and its sections."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _secrets(value)
            continue
        kind = _extra(field).get("secret")
        if kind:
            for v in value if isinstance(value, tuple) else (value,):
                if v is not None:
                    yield v.get_secret_value(), kind


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- loading
def resolve(env: Mapping[str, str], values: Mapping[str, Any], origin: str) -> Settings:
    """Settings from ``env`` (``FINSENT_<KEY>``) over ``values`` (the file ``origin``) over the defaults;
    :class:`ConfigError` (one line, secrets masked) for anything wrong."""
    token = _INPUT.set((env, values))
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(explain(exc, env, values, origin)) from None
    except SettingsError as exc:  # a source could not read a value (its message names the field, not the value)
        raise ConfigError(str(exc)) from None
    finally:
        _INPUT.reset(token)


def _extra(field: FieldInfo) -> dict[str, Any]:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def _field(names: list[str], model: Any) -> FieldInfo | None:
    field = None
    keyed = False  # the previous field is a table of models by name (the catalogue): skip the name
    for name in names:
        if keyed:
            keyed = False
            continue
        field = model.model_fields.get(name) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        model = field.annotation
        if get_origin(model) is dict:
            model, keyed = get_args(model)[1], True
    return field


def allowed(field: FieldInfo) -> str:
    """What a value of ``field`` may be, in words (errors and the README)."""
    given = _extra(field).get("allowed")
    if given:
        return str(given)
    kinds: dict[object, str] = {bool: "true or false", int: "an integer", float: "a number", str: "text"}
    kind = kinds.get(field.annotation, "text")
    bounds = {type(m).__name__.lower(): getattr(m, type(m).__name__.lower())
              for m in field.metadata if isinstance(m, (annotated_types.Ge, annotated_types.Gt, annotated_types.Le))}
    if "ge" in bounds and "le" in bounds:
        limits = [f"from {bounds['ge']} to {bounds['le']}"]
    else:
        limits = [" and ".join(f"{sign} {bounds[k]}" for k, sign in (("ge", ">="), ("gt", ">"), ("le", "<="))
                               if k in bounds)]
    for m in field.metadata:
        if isinstance(m, annotated_types.MultipleOf):
            limits.append(f"a multiple of {m.multiple_of}")
        if isinstance(m, annotated_types.MinLen) and m.min_length == 1:
            kind = "non-empty text"
    return " ".join([kind, ", ".join(x for x in limits if x)]).strip()


def _shown(field: FieldInfo | None, value: Any) -> str:
    kind = _extra(field).get("secret") if field else None
    if isinstance(value, SecretStr) or kind == "password":
        return repr(MASK)
    if kind == "dsn" and isinstance(value, str):
        return repr(redact_dsn(value))
    if kind == "url" and isinstance(value, str):
        return repr(redact(value))
    if kind:
        return repr(MASK)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _in_values(values: Mapping[str, Any], names: list[str]) -> bool:
    if not names:
        return False
    node: Any = values
    for name in names:
        if not isinstance(node, Mapping) or name not in node:
            return False
        node = node[name]
    return True


def _explain_one(err: Mapping[str, Any], env: Mapping[str, str], values: Mapping[str, Any], origin: str,
                 model: type[BaseModel]) -> str:
    names = [p for p in err["loc"] if isinstance(p, str)]
    key = ".".join(names) or "settings"
    variable = "FINSENT_" + "_".join(names[:2]).upper()
    deep = len(names) > 2  # a key inside a value: a feed of the catalogue
    if variable.lower() in env:
        where = f"{variable} ({key})" if deep else variable
    elif _in_values(values, names):
        where = f"{key} in {origin}"
    else:
        where = key
    if err["type"] == "extra_forbidden":
        if where.startswith(variable):
            return f"{variable}: unknown key {key}" if deep else f"{variable}: no such setting"
        return f"unknown key {key} in {origin}"
    reason = str(err["msg"]).removeprefix("Value error, ")
    reason = reason[:1].lower() + reason[1:]
    if len(names) == 1 and names[0] in SECTIONS:  # the table as a whole
        if isinstance(err.get("input"), Mapping):
            return f"invalid [{key}] settings: {reason}"
        return f"[{key}] in {origin} must be a table" if where != variable else f"{variable}: set its keys instead"
    field = _field(names, model)
    if err["type"] == "missing":  # a key a table lacks (a new feed without its url or kind)
        src = (f" in {variable}" if where.startswith(variable) else
               f" in {origin}" if _in_values(values, names[:-1]) else "")
        return f"missing {key}{src}" + (f" (allowed: {allowed(field)})" if field is not None else "")
    if field is None:
        return f"invalid {where}: {reason}"
    shown = f"invalid {where}={_shown(field, err.get('input'))}"
    if err["type"] == "string_pattern_mismatch":
        return f"{shown} (allowed: {allowed(field)})"
    return f"{shown}: {reason} (allowed: {allowed(field)})"


def explain(exc: ValidationError, env: Mapping[str, str], values: Mapping[str, Any], origin: str,
            model: type[BaseModel] | None = None) -> str:
    """One line for all of ``exc``'s errors (of ``model``, default :class:`Settings`): where each value
    came from, the value (secrets masked) and what is allowed."""
    lower = {k.lower(): v for k, v in env.items() if v != ""}
    lines = [_explain_one(e, lower, values, origin, model or Settings) for e in exc.errors(include_url=False)]
    return "; ".join(dict.fromkeys(lines))


# --------------------------------------------------------------------------- documentation
def env_names() -> list[str]:
    """The environment variable of every field."""
    names = []
    for name, field in Settings.model_fields.items():
        if name in SECTIONS:
            names += [f"FINSENT_{name}_{sub}".upper() for sub in field.annotation.model_fields]  # type: ignore[union-attr]
        else:
            names.append(f"FINSENT_{name}".upper())
    return names


def _default_text(field: FieldInfo) -> str:
    shown = _extra(field).get("shown")
    if shown:
        return str(shown)
    if field.is_required():
        return "required (a new feed)"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()  # a shipped default is no secret
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return f"`{','.join(value)}`"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def reference() -> list[tuple[str, str, str, str, str]]:
    """(key, environment, default, allowed, meaning) of every field: the README's table."""
    rows = []
    sections: list[tuple[str, type[BaseModel]]] = [("", Settings)]
    sections += [(s, Settings.model_fields[s].annotation) for s in SECTIONS]  # type: ignore[misc]
    for prefix, model in sections:
        for name, field in model.model_fields.items():
            if not prefix and name in SECTIONS:
                continue
            key = f"{prefix}.{name}" if prefix else name
            rows.append((f"`{key}`", f"`FINSENT_{key.replace('.', '_').upper()}`", _default_text(field),
                         allowed(field), str(field.description)))
    for name, field in FeedSpec.model_fields.items():  # the keys of each feed of the catalogue
        rows.append((f"`feeds.catalogue.NAME.{name}`", "in `FINSENT_FEEDS_CATALOGUE`", _default_text(field),
                     allowed(field), str(field.description)))
    return rows


TABLE_BEGIN = "<!-- settings table: generated by `python -m stream.base.settings --readme README.md` -->"
TABLE_END = "<!-- end of the settings table -->"


def markdown_table() -> str:
    lines = ["| key | environment | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in reference()]
    return "\n".join(lines)


def rewrite_readme(text: str) -> str:
    """``text`` (the README) with the table between its markers replaced by :func:`markdown_table`."""
    pattern = re.compile(re.escape(TABLE_BEGIN) + r"\n.*?" + re.escape(TABLE_END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"no settings table markers ({TABLE_BEGIN} ... {TABLE_END})")
    return pattern.sub(lambda _: f"{TABLE_BEGIN}\n{markdown_table()}\n{TABLE_END}", text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m stream.base.settings",
                                 description="print the settings reference table (markdown)")
    ap.add_argument("--readme", type=Path, metavar="FILE", help="rewrite the table between the markers of FILE")
    args = ap.parse_args(argv)
    if args.readme:
        args.readme.write_text(rewrite_readme(args.readme.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        sys.stdout.write(markdown_table() + "\n")


if __name__ == "__main__":
    main()
