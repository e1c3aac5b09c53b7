"""Every setting is range-checked; a wrong value stops with one line that names where it came from, shows
the value (masked if secret) and says what is allowed; classify and --help start without pydantic."""

from __future__ import annotations

import subprocess
import sys

import annotated_types
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from pydantic.fields import FieldInfo

from stream.base.config import ConfigError, load_settings, peek_settings
from stream.base.settings import AlertSettings, FeedSettings, Settings, StackSettings
from tests.conftest import REPO

SECTIONS = {"": Settings, "stack": StackSettings, "alerts": AlertSettings, "feeds": FeedSettings}


def fields() -> list[tuple[str, FieldInfo]]:
    out = []
    for prefix, model in SECTIONS.items():
        for name, f in model.model_fields.items():
            if name not in SECTIONS:
                out.append((f"{prefix}.{name}" if prefix else name, f))
    return out


def env_name(key: str) -> str:
    return "FINSENT_" + key.replace(".", "_").upper()


def toml_for(key: str, value: str) -> str:
    section, _, name = key.rpartition(".")
    return (f"[{section}]\n" if section else "") + f"{name} = {value}\n"


def bad_value(f: FieldInfo) -> str | None:
    """A value just outside the field's range (None: the field takes any text)."""
    bounds = {type(m).__name__: m for m in f.metadata}
    if f.annotation is bool:
        return "maybe"
    if f.annotation in (int, float):
        if "Ge" in bounds:
            return str(bounds["Ge"].ge - 1)
        if "Gt" in bounds:
            return str(bounds["Gt"].gt)
        return "many"
    if any(getattr(m, "pattern", None) for m in f.metadata):
        return "no such value!"
    return None


NUMERIC = [(k, f) for k, f in fields() if f.annotation in (int, float)]


@pytest.mark.parametrize("key, field", NUMERIC, ids=[k for k, _ in NUMERIC])
def test_every_number_is_range_checked(key, field):
    assert any(isinstance(m, (annotated_types.Ge, annotated_types.Gt)) for m in field.metadata), key


CHECKED = [(k, f, bad_value(f)) for k, f in fields() if bad_value(f) is not None]


@pytest.mark.parametrize("key, field, bad", CHECKED, ids=[k for k, _, _ in CHECKED])
def test_a_wrong_environment_value_is_one_line_naming_the_variable(key, field, bad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as exc:
        load_settings({env_name(key): bad})
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"invalid {env_name(key)}={bad!r}"), message
    assert "allowed: " in message


@pytest.mark.parametrize("key, field, bad", CHECKED, ids=[k for k, _, _ in CHECKED])
def test_a_wrong_toml_value_names_the_key_and_the_file(key, field, bad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "finsent.toml").write_text(toml_for(key, repr(bad).replace("'", '"')))
    with pytest.raises(ConfigError, match=f"^invalid {key} in finsent.toml={bad!r}.*allowed: ") as exc:
        load_settings({})
    assert "\n" not in str(exc.value)


def test_the_environment_beats_a_wrong_file_value(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "finsent.toml").write_text("partitions = 0\n")
    assert load_settings({"FINSENT_PARTITIONS": "3"}).partitions == 3


@pytest.mark.parametrize("env", [
    {"FINSENT_ALERTS_RETRY_MAX_S": "0.5"},  # below retry_initial_s
    {"FINSENT_ALERTS_SCOPE_KINDS": "ticker,sector"},
    {"FINSENT_ALERTS_WINDOW_S": "90"},  # not a multiple of 60
    {"FINSENT_STACK_KAFKA_VERSION": "latest"},
    {"FINSENT_SCHEMA": "drop table;"},
    {"FINSENT_TOPIC_RAW": "news raw"},
    {"FINSENT_DEVICE": "gpu"},
    {"FINSENT_ALERTS_TYPO": "1"},  # the [alerts] and [stack] variables are all settings: a typo is caught
])
def test_other_wrong_values(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as exc:
        load_settings(env)
    assert "\n" not in str(exc.value)


def test_unknown_keys_and_tables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "finsent.toml").write_text("kafak = 'typo'\nalerts = 5\n")
    with pytest.raises(ConfigError) as exc:
        load_settings({})
    assert str(exc.value) == "[alerts] in finsent.toml must be a table; unknown key kafak in finsent.toml"


SECRET = "Sec-7rq-Marker"


@pytest.mark.parametrize("env", [
    {"FINSENT_DATABASE_URL": f"host=db password={SECRET} bogus=1"},  # unknown libpq keyword
    {"FINSENT_DATABASE_URL": f"host=db password={SECRET} port"},  # no '='
    {"FINSENT_ANALYST_DATABASE_URL": f"mysql://u:{SECRET}@h/db"},
    {"FINSENT_DATABASE_URL": f"postgresql://u:{SECRET}@h/db", "FINSENT_PARTITIONS": "0"},  # another key is wrong
    {"FINSENT_SETTINGS_JSON": f'{{"writer_password": {{"x": "{SECRET}"}}}}'},
    {"FINSENT_SETTINGS_JSON": f'{{"alert_urls": [{{"x": "{SECRET}"}}]}}'},
    {"FINSENT_SETTINGS_JSON": f'{{"stack": {{"postgres_password": ["{SECRET}"]}}}}'},
])
def test_errors_never_show_a_secret(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as exc:
        load_settings(env)
    assert SECRET not in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(port=st.integers(-10, 70000), z=st.floats(-2, 10, allow_nan=False))
def test_ranges_accept_exactly_the_documented_values(port, z):
    env = {"FINSENT_STACK_POSTGRES_PORT": str(port), "FINSENT_ALERTS_Z_THRESHOLD": repr(z)}
    ok = 1 <= port <= 65535 and z > 0
    try:
        s = load_settings(env, config_file=None)
    except ConfigError as exc:
        assert not ok, exc
        assert ("FINSENT_STACK_POSTGRES_PORT" in str(exc)) == (not 1 <= port <= 65535)
        assert ("FINSENT_ALERTS_Z_THRESHOLD" in str(exc)) == (not z > 0)
    else:
        assert ok and s.stack.postgres_port == port and s.alerts.z_threshold == z


# ------------------------------------------------------------------ classify's settings, without pydantic
sources = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["", "/ckpt/a", "ckpt b"]), "device": st.sampled_from(["", "cpu", "cuda", "auto"]),
    "aliases": st.sampled_from(["", "/tmp/aliases.csv"]), "watchlist": st.sampled_from(["", "sp500", "top50"])})


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=sources, toml=sources)
def test_peeked_settings_are_the_loaded_ones(env, toml, tmp_path_factory):
    where = tmp_path_factory.mktemp("peek")
    (where / "finsent.toml").write_text("".join(f'{k} = "{v}"\n' for k, v in toml.items()))
    environ = {f"FINSENT_{k.upper()}": v for k, v in env.items()}
    full = load_settings(environ, config_file=where / "finsent.toml")
    raw = peek_settings(environ, config_file=where / "finsent.toml")
    defaults = Settings()
    for name in raw.FIELDS:  # unset: the reader's default, which is the setting's default
        assert (getattr(raw, name) or getattr(defaults, name)) == getattr(full, name), name


@pytest.mark.parametrize("argv, stdin", [
    (["--help"], None),
    (["classify"], '{"id": "1", "text": "Apple shares fall"}\n'),
])
def test_help_and_classify_start_without_pydantic(argv, stdin):
    code = ("import sys, runpy\nsys.argv = ['finsent'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('stream.cli', run_name='__main__')\nexcept SystemExit as exc:\n"
            "    code = exc.code\nprint('MODULES', sorted(m for m in sys.modules if m.startswith('pydantic')), code, "
            "file=sys.stderr)")
    res = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, input=stdin, capture_output=True, text=True,
                         timeout=120)
    assert "MODULES [] 0" in res.stderr, res.stderr[-2000:]


def test_a_wrong_change_in_code_or_an_option_is_a_config_error_too():
    s = Settings()
    with pytest.raises(ConfigError, match=r"^invalid max_batch=0: .*allowed: an integer >= 1"):
        s.replace(max_batch=0)  # finsent worker --max-batch 0
    with pytest.raises(ConfigError, match=r"^invalid min_negative=0: "):
        s.alerts.replace(min_negative=0)
    with pytest.raises(ConfigError) as exc:
        s.replace(database_url=f"host=db password={SECRET} port")
    assert SECRET not in str(exc.value)
