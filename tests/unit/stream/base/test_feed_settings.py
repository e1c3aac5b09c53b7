"""The feed catalogue in the settings: the shipped file, and finsent.toml / environment tables over it
(switch a feed on or off, add one, point one elsewhere), each mistake one line."""

from __future__ import annotations

import re
import tomllib

import pytest

from stream.base.config import ConfigError, load_settings
from stream.base.settings import CATALOGUE_FILE, FEED_NAME_PATTERN, shipped_catalogue
from stream.sources.edgar import has_contact


def test_the_shipped_catalogue_covers_the_sources_of_issue_26():
    cat = load_settings({}).feeds.catalogue
    edgar = {n: s for n, s in cat.items() if s.kind == "edgar"}
    assert {"type=8-K", "type=6-K"} <= {p for s in edgar.values() for p in s.url.split("&")}
    assert all(s.enabled and "output=atom" in s.url and "action=getcurrent" in s.url for s in edgar.values())
    wires = [n for n in cat if any(w in n for w in ("globenewswire", "prnewswire", "businesswire", "accesswire"))]
    assert len(wires) >= 3
    assert any("federalreserve.gov" in s.url and s.enabled for s in cat.values())
    general = [n for n, s in cat.items() if s.kind == "rss" and n not in wires and "federal" not in n]
    assert len(general) >= 4 and not any(cat[n].enabled for n in general)  # personal-use terms: off by default
    for name, spec in cat.items():
        assert spec.url.startswith("https://") and spec.terms and spec.title and spec.interval_s >= 60, name
        assert re.match(FEED_NAME_PATTERN, name), name


def test_the_shipped_file_is_a_finsent_toml_fragment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "finsent.toml").write_text(CATALOGUE_FILE.read_text())
    assert load_settings({}).feeds.catalogue == load_settings({"FINSENT_CONFIG": str(CATALOGUE_FILE)}).feeds.catalogue
    assert set(tomllib.loads(CATALOGUE_FILE.read_text())["feeds"]["catalogue"]) == set(shipped_catalogue())


def test_tables_in_finsent_toml_change_only_their_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "finsent.toml").write_text("""
[feeds]
user_agent = "Acme Research ops@acme.example"

[feeds.catalogue.cnbc-top-news]
enabled = true

[feeds.catalogue.sec-edgar-6k]
enabled = false

[feeds.catalogue.federal-reserve-press]
url = "http://127.0.0.1:8000/press_all.xml"

[feeds.catalogue.my-desk]
url = "https://news.example.org/desk.atom"
kind = "atom"
""")
    feeds = load_settings({}).feeds
    shipped = load_settings({"FINSENT_CONFIG": str(CATALOGUE_FILE)}).feeds.catalogue
    cat = feeds.catalogue
    assert cat["cnbc-top-news"].enabled and cat["cnbc-top-news"].url == shipped["cnbc-top-news"].url
    assert not cat["sec-edgar-6k"].enabled
    fed = cat["federal-reserve-press"]
    assert fed.url == "http://127.0.0.1:8000/press_all.xml" and fed.terms == shipped["federal-reserve-press"].terms
    assert cat["my-desk"].enabled and cat["my-desk"].interval_s == 300 and cat["my-desk"].kind == "atom"
    assert "my-desk" in feeds.enabled() and "sec-edgar-6k" not in feeds.enabled()
    assert has_contact(feeds.user_agent)


def test_the_environment_takes_a_json_object():
    feeds = load_settings({"FINSENT_FEEDS_CATALOGUE": '{"bbc-business": {"enabled": true}}',
                           "FINSENT_FEEDS_HOST_RATES": "www.sec.gov=5,feeds.example.org=0.5"}).feeds
    assert feeds.catalogue["bbc-business"].enabled and feeds.rate_of("WWW.SEC.GOV") == 5
    assert feeds.rate_of("feeds.example.org") == 0.5 and feeds.rate_of("other.example") == feeds.host_rate


def test_the_default_user_agent_names_no_contact():
    """EDGAR refuses anonymous clients: out of the box finsent does not poll it until the user says who they are."""
    assert not has_contact(load_settings({}).feeds.user_agent)


@pytest.mark.parametrize("toml, message", [
    ('[feeds.catalogue.mine]\nurl = "https://x.example/f.rss"\n', "missing feeds.catalogue.mine.kind in finsent.toml "
                                                                 "(allowed: rss, atom, edgar)"),
    ('[feeds.catalogue.mine]\nurl = "https://x.example/f.rss"\nkind = "json"\n',
     "invalid feeds.catalogue.mine.kind in finsent.toml='json' (allowed: rss, atom, edgar)"),
    ('[feeds.catalogue.sec-edgar-8k]\ninterval_s = 1\n', "invalid feeds.catalogue.sec-edgar-8k.interval_s in "
                                                         "finsent.toml=1: input should be greater than or equal to 10"),
    ('[feeds.catalogue.sec-edgar-8k]\nenabeld = false\n', "unknown key feeds.catalogue.sec-edgar-8k.enabeld in "
                                                          "finsent.toml"),
    ('[feeds.catalogue."My Feed"]\nurl = "x"\nkind = "rss"\n', "feed name 'My Feed'"),
    ('[feeds]\nhost_rates = ["www.sec.gov"]\n', "is not HOST=RATE"),
    ('[feeds]\njitter = 0.9\n', "invalid feeds.jitter in finsent.toml=0.9"),
])
def test_mistakes_are_one_line(toml, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "finsent.toml").write_text(toml)
    with pytest.raises(ConfigError) as exc:
        load_settings({})
    assert message in str(exc.value) and "\n" not in str(exc.value)
