"""Both libpq forms of a connection string: reading, deriving the analyst's login, and the one redactor."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
from hypothesis import given, settings, strategies as st
from psycopg2.extensions import make_dsn, parse_dsn

from stream.base.dsn import InvalidDSN, dsn_params, is_url, redact_dsn, with_login
from stream.base.redact import install_log_scrubber, redact, scrub, url_token_parts

MARK = "Zq7Secret"  # in every generated password, and nowhere else
# libpq accepts any byte but NUL in a password; keep to printable text plus quotes, blanks, backslashes, = and @
passwords = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(" '\"\\=@:/?&%#\t"),
                    max_size=20).map(lambda s: MARK + s)


def kv(password: str | None, **extra: str) -> str:
    return make_dsn(host="db.example", port="5432", dbname="finsent", user="app",
                    **({"password": password} if password is not None else {}), **extra)


def url(password: str | None, query: str = "") -> str:
    login = "app" + (f":{quote(password, safe='')}" if password is not None else "")
    return f"postgresql://{login}@db.example:5432/finsent" + (f"?{query}" if query else "")


@pytest.mark.parametrize("dsn, shown", [
    ("postgresql://u:s3cret@h:5/db", "postgresql://u:***@h:5/db"),
    ("postgresql://h/db", "postgresql://h/db"),
    ("postgresql://u@h/db?sslmode=require&password=s3cret", "postgresql://u@h/db?sslmode=require&password=***"),
    ("postgres://u:s3cret@h1,h2:5/db?sslpassword=k3y", "postgres://u:***@h1,h2:5/db?sslpassword=***"),
    ("host=db port=5432 dbname=finsent user=finsent password=SuperSecret1",
     "user=finsent password=*** dbname=finsent host=db port=5432"),
    ("host=db user=u password='a b\\' c'", "user=u password=*** host=db"),
    ("host=/var/run/postgresql dbname=finsent", "dbname=finsent host=/var/run/postgresql"),
])
def test_redact_masks_both_forms(dsn, shown):
    assert redact(dsn) == redact_dsn(dsn) == shown


@pytest.mark.parametrize("value", [
    "SuperSecret1",  # a bare password
    "host=db password",  # unreadable: any word may be the password
    "",
])
def test_redact_shows_nothing_of_what_it_cannot_read(value):
    assert redact(value) == "***"


@pytest.mark.parametrize("value, shown", [
    ("json://alice:Pw-1@127.0.0.1:9/hook?-X-Api-Token=Tok-2", "json://***"),
    ("tgram://123456:AAbbCCddEE/987", "tgram://***"),  # the bot token is the "host"
    ("slack://T000/B000/XXXX", "slack://***"),
    ("mysql://u:SuperSecret1@h/db", "mysql://***"),
])
def test_redact_keeps_only_the_scheme_of_other_urls(value, shown):
    assert redact(value) == shown


@settings(max_examples=300, deadline=None)
@given(password=passwords, form=st.sampled_from(["kv", "url", "url-query"]))
def test_no_form_of_a_dsn_shows_its_password(password, form):
    dsn = {"kv": lambda: kv(password), "url": lambda: url(password),
           "url-query": lambda: url(None, f"sslmode=require&password={quote(password, safe='')}")}[form]()
    assert parse_dsn(dsn)["password"] == password  # the string really carries it
    assert MARK not in redact(dsn)


@settings(max_examples=300, deadline=None)
@given(writer=passwords | st.none(), analyst=passwords, form=st.sampled_from(["kv", "url"]))
def test_the_analyst_login_is_derived_from_either_form(writer, analyst, form):
    dsn = kv(writer, sslmode="require") if form == "kv" else url(writer, "sslmode=require")
    derived = with_login(dsn, "finsent_analyst", analyst)
    params = parse_dsn(derived)
    assert is_url(derived) == (form == "url")  # a URL stays a URL
    assert (params["user"], params["password"]) == ("finsent_analyst", analyst)
    assert (params["host"], params["port"], params["dbname"], params["sslmode"]) == \
        ("db.example", "5432", "finsent", "require")


@pytest.mark.parametrize("dsn", [kv(None), url(None), "postgresql://app@db.example/finsent?password=w"])
def test_without_a_password_libpq_is_left_to_find_one(dsn):
    """PGPASSWORD or a passfile: nothing may put a password in the string."""
    assert "password" not in parse_dsn(with_login(dsn, "finsent_analyst", None))


@settings(max_examples=200, deadline=None)
@given(junk=st.text(max_size=30), password=passwords)
def test_an_unreadable_dsn_is_refused_without_quoting_it(junk, password):
    value = f"host=db password={password} {junk}"
    try:
        params = dsn_params(value)
    except InvalidDSN as exc:
        assert MARK not in str(exc)
        assert redact(value) == "***"
    else:
        assert MARK not in redact(value) or MARK in "".join(v for k, v in params.items() if k != "password")


def test_a_non_postgres_url_is_not_a_dsn():
    with pytest.raises(InvalidDSN, match="postgresql://"):
        dsn_params("mysql://u:SuperSecret1@h/db")


def test_scrub_removes_every_secret_but_short_and_visible_ones():
    text = "login app:Long-Secret-1 failed; pw abc; shown user=app"
    assert scrub(text, "Long-Secret-1", "abc", "app", visible="user=app") == \
        "login app:*** failed; pw abc; shown user=app"


def test_log_records_are_scrubbed_whoever_formats_them(caplog):
    log = logging.getLogger("some.library")
    try:
        install_log_scrubber(["Log-Secret-42"])
        with caplog.at_level(logging.INFO, logger="some.library"):
            log.info("connecting with %s", "password=Log-Secret-42")
            try:
                raise RuntimeError("dsn host=x password=Log-Secret-42")
            except RuntimeError:
                log.exception("failed")
        text = caplog.text
        assert "Log-Secret-42" not in text and "password=***" in text and "RuntimeError" in text
    finally:
        install_log_scrubber([])
    with caplog.at_level(logging.INFO, logger="some.library"):
        log.info("after %s", "Log-Secret-42")
    assert "after Log-Secret-42" in caplog.text  # the test can fail: unscrubbed records do show it


@pytest.mark.parametrize("url, tokens, kept", [
    ("json://alice:Pw-Secret-4h2@127.0.0.1:44811/hook?-X-Api-Token=Tok-Secret-1x8",
     {"Pw-Secret-4h2", "Tok-Secret-1x8"}, {"hook", "alice", "127.0.0.1"}),
    ("json://127.0.0.1:9/PathTok-Secret-9z5", {"PathTok-Secret-9z5"}, set()),
    ("json://hooks.internal:8000/finsent", set(), {"finsent", "hooks.internal", "8000"}),  # the README's example
    ("tgram://123456789:AAHdqTcvCH1vGWJxfSeof/987654", {"123456789", "AAHdqTcvCH1vGWJxfSeof"}, set()),
    ("mailto://user:pass%2Fword@gmail.com", {"pass%2Fword", "pass/word"}, {"gmail.com"}),
])
def test_the_token_parts_of_apprise_urls_are_scrubbed_and_plain_words_are_not(url, tokens, kept):
    parts = set(url_token_parts(url))
    assert tokens <= parts and not kept & parts
