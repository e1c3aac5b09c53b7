"""Settings: defaults, finsent.toml, environment precedence, errors, and the README's reference."""

import re

import pytest

from stream.base.config import ConfigError, load_settings
from stream.base.settings import TABLE_BEGIN, TABLE_END, markdown_table, reference
from tests.conftest import REPO

README = REPO / "README.md"


def test_defaults_are_the_local_stack(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.dsn == "postgresql://finsent:finsent@127.0.0.1:15432/finsent"
    assert s.analyst_dsn == "postgresql://finsent_analyst:finsent_analyst@127.0.0.1:15432/finsent"
    assert s.uses_local_kafka and s.uses_local_postgres
    assert s.state_dir == tmp_path / ".finsent"


def test_toml_then_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "finsent.toml").write_text(
        'kafka = "k1:9092"\npartitions = 12\nalert_urls = ["json://a", "json://b"]\n'
        '[alerts]\nmin_negative = 8\n[stack]\npostgres_port = 25432\n')
    s = load_settings(env={"FINSENT_PARTITIONS": "6", "FINSENT_ALERTS_COOLDOWN_S": "60",
                           "FINSENT_DATABASE_URL": "postgresql://u:p@db/x"})
    assert s.kafka == "k1:9092" and s.partitions == 6
    assert [u.get_secret_value() for u in s.alert_urls] == ["json://a", "json://b"]
    assert s.alerts.min_negative == 8 and s.alerts.cooldown_s == 60
    assert s.stack.postgres_port == 25432
    assert s.dsn == "postgresql://u:p@db/x" and not s.uses_local_postgres
    assert s.analyst_dsn == "postgresql://finsent_analyst:finsent_analyst@db/x"
    env_urls = load_settings(env={"FINSENT_ALERT_URLS": "json://x, mailto://y"}).alert_urls
    assert [u.get_secret_value() for u in env_urls] == ["json://x", "mailto://y"]


def test_bad_values_name_the_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="FINSENT_PARTITIONS"):
        load_settings(env={"FINSENT_PARTITIONS": "many"})
    (tmp_path / "finsent.toml").write_text("kafak = 'typo'\n")
    with pytest.raises(ConfigError, match=r"unknown key.*kafak"):
        load_settings(env={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(env={"FINSENT_CONFIG": str(tmp_path / "missing.toml")})


def test_readme_table_is_generated_from_the_settings():
    text = README.read_text()
    section = text[text.index("## Configuration"):text.index("## Analyst SQL cookbook")]
    assert TABLE_BEGIN in section and TABLE_END in section
    table = section[section.index(TABLE_BEGIN) + len(TABLE_BEGIN):section.index(TABLE_END)].strip()
    assert table == markdown_table(), "run: python -m stream.base.settings --readme README.md"
    keys = [row[0] for row in reference()]
    # every field of Settings, [stack], [alerts] and [feeds] once, and the keys of a feed of the catalogue
    assert len(keys) == len(set(keys)) == 27 + 7 + 24 + 10 + 6
    assert all(row[4] and row[3] for row in reference()), "every field has a meaning and an allowed range"


def test_readme_quick_start_is_two_commands():
    text = README.read_text()
    quick = text[text.index("## Quick start"):text.index("## Architecture")]
    block = re.search(r"```sh\n(.*?)```", quick, re.S).group(1)
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["make demo", "make test"]
