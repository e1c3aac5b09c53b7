"""A child process gets the whole settings: every field survives ``settings_env`` -> ``load_settings``."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import SecretStr

from stream.base.config import (
    SETTINGS_ENV,
    AlertSettings,
    ConfigError,
    Settings,
    StackSettings,
    load_settings,
    settings_as_dict,
    settings_env_keys,
)
from stream.base.settings import FeedSettings
from stream.process import settings_env

# values the checks accept, different from the defaults (a generic change would break a pattern or a range)
SPECIAL = {"schema": "other_schema", "device": "cuda", "database_url": "postgresql://u:p-1@db.example/x",
           "analyst_database_url": "host=db.example user=a password='p 2'", "kafka_version": "4.2.0",
           "window_s": 600, "step_s": 120, "scope_kinds": ("ticker", "all"), "min_share": 0.5, "ewma_alpha": 0.2,
           "story_threshold": 0.75, "alert_urls": ("json://a-host/x", "json://b-host/y,with comma"),
           "host_rates": ("a.example=2", "b.example=0.5"),
           "catalogue": {"mine": {"url": "http://127.0.0.1:9/x", "kind": "atom"}, "sec-edgar-8k": {"enabled": False}}}
SECTIONS = ("alerts", "stack", "feeds")


def _other(name: str, typ, default):
    """A value of the field's type that differs from its default."""
    if name in SPECIAL:
        return SPECIAL[name]
    if typing.get_origin(typ) in (typing.Union, __import__("types").UnionType):
        typ = next(a for a in typing.get_args(typ) if a is not type(None))
    if typ is bool:
        return not default
    if typ is int:
        return default + 7
    if typ is float:
        return default + 0.125
    if typ is Path:
        return Path("/tmp") / f"finsent-{name}"
    if typing.get_origin(typ) is tuple:
        return (f"{name}-a", f"{name}-b,with comma")
    if "topic" in name:
        return f"{name}.value"
    return f"{name}-value"


def _changed(cls):
    return {name: _other(name, f.annotation, f.get_default(call_default_factory=True))
            for name, f in cls.model_fields.items() if name not in SECTIONS}


def every_field_changed() -> Settings:
    s = Settings(**_changed(Settings), alerts=AlertSettings(**_changed(AlertSettings)),
                 stack=StackSettings(**_changed(StackSettings)), feeds=FeedSettings(**_changed(FeedSettings)))
    defaults = Settings()
    for name in Settings.model_fields:  # the test can fail: every field really differs
        if name in SECTIONS:
            for sub in type(getattr(s, name)).model_fields:
                assert getattr(getattr(s, name), sub) != getattr(getattr(defaults, name), sub), sub
        else:
            assert getattr(s, name) != getattr(defaults, name), name
    return s


def test_every_field_survives_the_child_environment(monkeypatch):
    s = every_field_changed()
    monkeypatch.setenv("FINSENT_SCHEMA", "inherited")  # a parent's variable must not beat its resolved settings
    monkeypatch.setenv("FINSENT_ALERTS_COOLDOWN_S", "1")
    monkeypatch.setenv("FINSENT_CONFIG", "/nonexistent/finsent.toml")  # the child reads no finsent.toml
    env = settings_env(s)
    assert "FINSENT_SCHEMA" not in env and "FINSENT_ALERTS_COOLDOWN_S" not in env
    assert load_settings(env) == s


def test_extra_variables_override_single_fields_in_the_child():
    s = every_field_changed()
    child = load_settings(settings_env(s, FINSENT_ALIASES="/tmp/aliases.csv", FINSENT_ALERTS_MIN_NEGATIVE="3"))
    assert child == s.replace(aliases="/tmp/aliases.csv", alerts=s.alerts.replace(min_negative=3))


def test_a_real_child_process_resolves_the_same_settings(tmp_path):
    s = every_field_changed()
    code = "import json; from stream.base.config import load_settings, settings_as_dict; " \
           "print(json.dumps(settings_as_dict(load_settings())))"
    # this checkout's code, whichever checkout the environment has installed
    env = settings_env(s, PYTHONPATH=str(Path(__file__).resolve().parents[4]))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out) == settings_as_dict(s)


def test_the_env_keys_cover_every_field():
    keys = settings_env_keys()
    assert {"FINSENT_KAFKA", "FINSENT_DATABASE_URL", "FINSENT_ALERT_URLS", "FINSENT_MODEL", "FINSENT_STATE_DIR",
            "FINSENT_ALERTS_Z_THRESHOLD", "FINSENT_STACK_POSTGRES_PORT", SETTINGS_ENV} <= keys
    n = (len(Settings.model_fields) - 3 + len(AlertSettings.model_fields) + len(StackSettings.model_fields)
         + len(FeedSettings.model_fields) + 1)
    assert len(keys) == n


def test_broken_settings_json_is_a_config_error():
    with pytest.raises(ConfigError, match=SETTINGS_ENV):
        load_settings({SETTINGS_ENV: "{not json"})


def test_the_child_environment_carries_secrets_that_the_parent_never_prints():
    s = every_field_changed()
    assert isinstance(s.writer_password, SecretStr) and "writer_password-value" not in repr(s) + str(s)
    assert "p-1" not in repr(s) and "p 2" not in repr(s)
    assert json.loads(settings_env(s)[SETTINGS_ENV])["writer_password"] == "writer_password-value"
