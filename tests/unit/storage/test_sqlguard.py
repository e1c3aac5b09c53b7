"""`finsent sql` runs one statement per call: the splitter reads quotes, comments and dollar
quoting the way PostgreSQL does, and refuses what it cannot close."""

import pytest
from hypothesis import given, settings, strategies as st

from storage.sqlguard import SqlShapeError, count_statements, single_statement


@pytest.mark.parametrize("sql, n", [
    ("SELECT 1", 1),
    ("SELECT 1;", 1),
    ("  SELECT 1 ; ;  ", 1),
    ("SELECT ';'", 1),
    ("SELECT 'it''s; fine'", 1),
    ("SELECT 'a\\'; DELETE FROM articles", 2),  # standard strings: the backslash is a character
    ("SELECT E'a\\'; DELETE FROM articles'", 1),  # E strings: \' escapes the quote
    ("SELECT e'\\\\'; DELETE FROM x", 2),
    ("SELECT \"a;b\" FROM t", 1),
    ("SELECT \"a\"\";\"\"b\"", 1),
    ("SELECT $$;$$", 1),
    ("SELECT $a$ ; $b$ ; $a$", 1),
    ("SELECT $a$ x $a$; SELECT 2", 2),
    ("SELECT a$b$; DELETE FROM x", 2),  # an identifier may contain $: no dollar quote here
    ("SELECT $1; SELECT $2", 2),
    ("SELECT 1 -- ; DELETE\n", 1),
    ("SELECT 1 -- x\n; DELETE FROM x", 2),
    ("/* /* ; */ ; */ SELECT 1", 1),
    ("SELECT U&'d\\0061t;a'", 1),
    ("SELECT U&\"d;a\"", 1),
    ("SELECT B'101'; SELECT X'1f'", 2),
    ("SELECT 1\u00a0; SELECT 2", 2),
    ("SET default_transaction_read_only = off; COMMIT; CREATE TEMP TABLE t AS SELECT 1", 3),
    ("", 0),
    (" ; -- nothing\n /* */ ;", 0),
])
def test_statements_are_counted_like_postgresql(sql, n):
    assert count_statements(sql) == n


@pytest.mark.parametrize("sql", ["SELECT 'open", "SELECT \"open", "SELECT $x$ open", "/* open /* */",
                                 "SELECT E'\\'", "SELECT U&'open"])
def test_open_constructs_are_refused(sql):
    with pytest.raises(SqlShapeError):
        count_statements(sql)


def test_single_statement():
    assert single_statement("SELECT 1;") == "SELECT 1;"
    with pytest.raises(SqlShapeError, match="one statement per call"):
        single_statement("SET default_transaction_read_only = off; COMMIT; DELETE FROM articles")
    with pytest.raises(SqlShapeError, match="empty"):
        single_statement("-- nothing")


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("ab1 ;'\"$-/*\\\nEeU&x_"), max_size=40))
def test_any_text_is_counted_or_refused(text):
    try:
        assert count_statements(text) >= 0
    except SqlShapeError:
        pass


LITERALS = st.one_of(
    st.text(st.sampled_from("a;'\"$ \n"), max_size=8).map(lambda s: "'" + s.replace("'", "''") + "'"),
    st.text(st.sampled_from("a;'\"$ \n"), max_size=8).map(lambda s: '"' + s.replace('"', '""') + '"'),
    st.text(st.sampled_from("a;'\" \n$"), max_size=8).filter(lambda s: "$q$" not in s).map(lambda s: f"$q${s}$q$"),
    st.text(st.sampled_from("a;'\"$ "), max_size=8).map(lambda s: "-- " + s + "\n"),
    st.text(st.sampled_from("a;'\"$ "), max_size=8).map(lambda s: "/* " + s + " */"),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(LITERALS, min_size=1, max_size=4), min_size=1, max_size=4))
def test_semicolons_inside_quotes_and_comments_never_split(statements):
    sql = "; ".join("SELECT " + " ".join(parts) for parts in statements)
    assert count_statements(sql) == len(statements)
