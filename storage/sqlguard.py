"""One statement per ``finsent sql`` call.

psycopg2 sends a query string with PostgreSQL's simple protocol, which runs
every ``;``-separated statement in it.  A read-only session can then be left
from inside one call: ``SET default_transaction_read_only = off; COMMIT;
CREATE TEMP TABLE ...`` (or ``ALTER ROLE <self> SET statement_timeout = 0``).
:func:`count_statements` splits the text the way PostgreSQL's lexer does with
its default settings (``standard_conforming_strings = on``): quoted strings
(``'..'``, ``E'..'`` with backslash escapes, ``U&'..'``, ``B'..'``,
``X'..'``, ``N'..'``), quoted identifiers, dollar quoting (``$tag$..$tag$``,
but not ``$1`` or ``a$b$``), ``--`` comments and nested ``/* */`` comments.
Any construct left open is refused rather than guessed at.  Only the text up
to the first real ``;`` needs to match the server's reading: no setting can
change how the server reads it before that point.

Pure code, no I/O.
"""

from __future__ import annotations

import re
from typing import cast

from stream.base.errors import UserError

_IDENT_START = re.compile(r"[A-Za-z_\u0080-\U0010ffff]")
_IDENT = re.compile(r"[A-Za-z0-9_$\u0080-\U0010ffff]*")
_SPACE = " \t\n\r\f\v"  # PostgreSQL's whitespace; other spaces (U+00A0 ...) are identifier characters
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")


class SqlShapeError(UserError):
    """The query text is not exactly one complete statement."""


def _skip_quoted(text: str, i: int, quote: str, backslash: bool) -> int:
    """Index after the closing quote of a quoted token whose opening quote is at ``i``."""
    n = len(text)
    i += 1
    while i < n:
        c = text[i]
        if backslash and c == "\\":
            i += 2
            continue
        if c == quote:
            if i + 1 < n and text[i + 1] == quote:  # doubled quote: an escaped quote
                i += 2
                continue
            return i + 1
        i += 1
    raise SqlShapeError(f"unterminated {quote}-quoted text")


def count_statements(text: str) -> int:
    """The number of non-empty statements in ``text``."""
    n = len(text)
    i = 0
    statements = 0
    current = False  # the current statement has a token
    while i < n:
        c = text[i]
        if c in _SPACE:
            i += 1
        elif text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while depth:
                if i >= n:
                    raise SqlShapeError("unterminated /* comment")
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == ";":
            statements += current
            current = False
            i += 1
        else:
            current = True
            if c == "'":
                i = _skip_quoted(text, i, "'", backslash=False)
            elif c == '"':
                i = _skip_quoted(text, i, '"', backslash=False)
            elif c == "$":
                m = _DOLLAR_TAG.match(text, i)
                if m is None:  # $1, or a lone $ (operator characters)
                    i += 1
                    continue
                end = text.find(m.group(0), m.end())
                if end < 0:
                    raise SqlShapeError(f"unterminated {m.group(0)} quoted text")
                i = end + len(m.group(0))
            elif _IDENT_START.match(c):
                j = cast(re.Match[str], _IDENT.match(text, i + 1)).end()  # _IDENT matches the empty string too
                word = text[i:j].lower()
                i = j
                if i < n and text[i] == "'" and word in ("e", "b", "x", "n"):
                    i = _skip_quoted(text, i, "'", backslash=(word == "e"))
                elif word == "u" and text.startswith(("&'", '&"'), i):
                    i = _skip_quoted(text, i + 1, text[i + 1], backslash=False)
            elif c.isdigit():
                i += 1
                while i < n and (text[i].isalnum() or text[i] in "._"):
                    i += 1
            else:
                i += 1
    return statements + current


def single_statement(text: str) -> str:
    """``text`` if it holds exactly one statement, else :class:`SqlShapeError` (a user error)."""
    count = count_statements(text)
    if count == 0:
        raise SqlShapeError("empty query")
    if count > 1:
        raise SqlShapeError(
            f"the query holds {count} statements; finsent sql runs one statement per call "
            "(several in one call could leave the read-only transaction)"
        )
    return text
