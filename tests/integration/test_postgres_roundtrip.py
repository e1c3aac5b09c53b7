"""Real PostgreSQL round-trip in a per-test schema."""

import psycopg2


def test_postgres_roundtrip_in_own_schema(stack, schema):
    conn = psycopg2.connect(stack.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f'SET search_path TO "{schema}"')
            cur.execute("CREATE TABLE roundtrip (id int PRIMARY KEY, title text, tickers text[])")
            cur.execute("INSERT INTO roundtrip VALUES (%s, %s, %s)", (1, "Acme beats", ["ACME", "XYZ"]))
        with conn, conn.cursor() as cur:
            cur.execute(f'SELECT title, tickers FROM "{schema}".roundtrip WHERE id = 1')
            assert cur.fetchone() == ("Acme beats", ["ACME", "XYZ"])
            cur.execute("SHOW server_version_num")
            assert int(cur.fetchone()[0]) >= 130000
    finally:
        conn.close()
