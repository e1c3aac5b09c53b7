"""PostgreSQL connection strings in both of libpq's forms: a URL (``postgresql://user:pw@host/db``)
or ``key=value`` pairs (``host=db dbname=finsent user=finsent password=...``).

libpq (through :func:`psycopg2.extensions.parse_dsn` / ``make_dsn``) does the parsing; this module
never splits a ``key=value`` string itself.  A password may be absent from the string: libpq then
takes it from ``PGPASSWORD`` or a passfile (``passfile=``, ``PGPASSFILE``, ``~/.pgpass``), and
nothing here injects one.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import psycopg2
from psycopg2.extensions import make_dsn, parse_dsn

URL_SCHEMES = ("postgresql", "postgres")
# libpq parameters whose value is a secret (``sslpassword`` unlocks the client key)
SECRET_PARAMS = ("password", "sslpassword")
_URL = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://")
_LOGIN_PARAMS = ("user", "password")


class InvalidDSN(ValueError):
    """Not a libpq connection string.  The message never holds any part of the string."""


def is_url(dsn: str) -> bool:
    """Whether ``dsn`` is in URL form (``scheme://...``) rather than ``key=value`` pairs."""
    return bool(_URL.match(dsn))


def dsn_params(dsn: str) -> dict[str, str]:
    """libpq's reading of ``dsn`` (either form) as ``{parameter: value}``; :class:`InvalidDSN` if it
    is neither a ``postgresql://`` URL nor ``key=value`` pairs."""
    if is_url(dsn) and urlsplit(dsn.strip()).scheme.lower() not in URL_SCHEMES:
        raise InvalidDSN(f"a connection URL starts with {' or '.join(s + '://' for s in URL_SCHEMES)}")
    try:
        result: dict[str, str] = parse_dsn(dsn)
        return result
    except psycopg2.ProgrammingError:  # libpq's message quotes the string: never shown
        raise InvalidDSN("libpq cannot read it") from None


def with_login(dsn: str, user: str, password: str | None) -> str:
    """``dsn`` logging in as ``user`` with ``password`` instead (same server, database and other
    parameters, same form: a URL stays a URL).  ``password`` None keeps no password in the string, so
    libpq looks in ``PGPASSWORD`` or the passfile."""
    dsn_params(dsn)  # both forms are checked by libpq first
    if not is_url(dsn):
        params = {k: v for k, v in parse_dsn(dsn).items() if k not in _LOGIN_PARAMS}
        result: str = make_dsn(**params, user=user, **({"password": password} if password is not None else {}))
        return result
    parts = urlsplit(dsn.strip())
    host = parts.netloc.rpartition("@")[2]
    login = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
    query = "&".join(p for p in parts.query.split("&") if p and unquote(p.partition("=")[0]) not in _LOGIN_PARAMS)
    return urlunsplit(parts._replace(netloc=f"{login}@{host}", query=query))


def redact_dsn(dsn: str) -> str:
    """``dsn`` with every secret parameter shown as ``***``, in its own form; ``***`` alone when the
    string cannot be read (then any part of it might be the password)."""
    try:
        params = dsn_params(dsn)
    except InvalidDSN:
        return "***"
    if not is_url(dsn):
        result: str = make_dsn(**{k: ("***" if k in SECRET_PARAMS else v) for k, v in params.items()})
        return result
    parts = urlsplit(dsn.strip())
    login, at, host = parts.netloc.rpartition("@")
    if at and ":" in login:
        login = login.partition(":")[0] + ":***"
    query = "&".join(
        (f"{p.partition('=')[0]}=***" if unquote(p.partition("=")[0]) in SECRET_PARAMS else p)
        for p in parts.query.split("&") if p)
    return urlunsplit(parts._replace(netloc=f"{login}{at}{host}", query=query))
