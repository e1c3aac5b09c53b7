"""The one redactor: what status, errors and logs may show of a secret-bearing value.

* :func:`redact` masks a database connection string in either form (URL or ``key=value``) and any
  other URL (apprise URLs carry tokens in the user, host, path or query, depending on the service).
* :func:`scrub` removes known secret values from free text (a library's message, a traceback).
* :func:`install_log_scrubber` makes every log record of the process go through :func:`scrub` with
  the settings' secrets, whichever library logs it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from stream.base.dsn import URL_SCHEMES, is_url, redact_dsn

MASK = "***"


def redact(value: str | None) -> str:
    """``value`` with its secrets masked.

    * a PostgreSQL URL or ``key=value`` string: the password (and ``sslpassword``) becomes ``***``,
      user, host, port, database and options stay;
    * any other URL (apprise): only the scheme stays (``json://***``): where a service keeps its
      token (user, host, path or query) differs by service;
    * anything else (a bare password, an unreadable string): ``***``.
    """
    if value is None:
        return "None"
    if is_url(value):
        scheme = urlsplit(value.strip()).scheme
        if scheme.lower() in URL_SCHEMES:
            return redact_dsn(value)
        return f"{scheme}://{MASK}"
    if "=" in value:
        return redact_dsn(value)
    return MASK


def scrub(text: str, *secrets: str | None, visible: str = "") -> str:
    """``text`` with every secret replaced by ``***`` (longest first).

    Belt and braces: libpq and the server never echo passwords, but a message built from user input
    might.  A secret that also appears in ``visible`` (e.g. a redacted URL, where a password equal to
    the user name shows anyway) or is shorter than 4 characters is left alone, so messages stay
    readable.
    """
    for s in sorted({s for s in secrets if s}, key=len, reverse=True):
        if len(s) >= 4 and s not in visible:
            text = text.replace(s, MASK)
    return text


_PLAIN = re.compile(r"^[a-z]+(?:[.-][a-z]+)*$")  # a lower-case word or host name: "hook", "hooks.internal"


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def url_token_parts(url: str) -> list[str]:
    """The parts of an apprise URL that may be a token, for :func:`scrub`: the user, password and "host"
    (some services put the token there), each path segment and each query value, as written and
    decoded; short parts (under 6 characters), lower-case words or host names, and IP addresses are
    left out, so that scrubbing them does not blank ordinary words in every log line."""
    rest = url.partition("://")[2]
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    path, _, query = tail.partition("#")[0].partition("?")
    parts = re.split(r"[@:]", netloc) + path.split("/")
    parts += [p.partition("=")[2] for p in query.split("&")]
    found = []
    for part in parts:
        for text in dict.fromkeys((part, unquote(part))):
            if len(text) >= 6 and not _PLAIN.match(text) and not _is_address(text):
                found.append(text)
    return found


# --------------------------------------------------------------------------- log records
_lock = threading.Lock()
_secrets: tuple[str, ...] = ()
_base_factory = None


def _scrubbing_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)  # type: ignore[misc]
    secrets = _secrets
    if not secrets:
        return record
    message = record.getMessage()
    clean = scrub(message, *secrets)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        record.exc_text = scrub(text, *secrets)
    return record


def install_log_scrubber(secrets: Iterable[str]) -> None:
    """Scrub ``secrets`` from every log record created from now on, in this process (its message and
    its traceback), whichever handler or library formats it.  Calling it again replaces the set."""
    global _secrets, _base_factory
    with _lock:
        _secrets = tuple(sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True))
        if _base_factory is None:
            _base_factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_scrubbing_factory)
