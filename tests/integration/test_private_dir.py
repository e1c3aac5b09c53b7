"""The local stack from a directory other users cannot enter, and a stack that cannot start.

Own state dir and own port: the shared stack is never touched.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest

from deploy import localstack
from stream.base.config import load_settings
from stream.process import REPO

PORT = "27543"  # this test's own PostgreSQL port


@pytest.mark.skipif(os.geteuid() != 0, reason="the case arises when root runs the server as 'postgres'")
def test_postgres_starts_from_a_state_dir_postgres_cannot_enter():
    private = Path(tempfile.mkdtemp(prefix="finsent-private-"))  # mode 0700, owned by root
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
    state = private / "checkout" / ".finsent"
    pg_home = Path(tempfile.mkdtemp(prefix="finsent-pghome-"))  # stands for ~postgres/finsent
    os.chmod(pg_home, 0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
    env.update(FINSENT_STATE_DIR=str(state), FINSENT_STACK_POSTGRES_PORT=PORT, FINSENT_PG_HOME=str(pg_home))
    settings = load_settings(env)
    os.environ["FINSENT_PG_HOME"] = str(pg_home)  # pg_root reads it from this process
    try:
        state.mkdir(parents=True)
        assert not localstack._can_traverse(state, "postgres")
        localstack.start_postgres(settings, quiet=True)
        root = localstack.pg_root(settings)
        assert not str(root).startswith(str(private)) and (root / "data" / "PG_VERSION").exists()
        assert (state / localstack.PG_LOCATION_FILE).read_text().strip() == str(root)
        assert localstack.pg_pid(settings)
        conn = psycopg2.connect(settings.dsn)
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        conn.close()
        assert stat.S_IMODE(os.stat(private).st_mode) == 0o700  # the user's permissions are unchanged
        localstack.stop_postgres(settings, quiet=True)
        assert localstack.pg_pid(settings) is None
        localstack.start_postgres(settings, quiet=True)  # the recorded location is found again
        assert localstack.pg_root(settings) == root and localstack.pg_pid(settings)
    finally:
        localstack.stop_postgres(settings, quiet=True)
        root = localstack.pg_root(settings)
        os.environ.pop("FINSENT_PG_HOME", None)
        assert str(root).startswith(str(pg_home))
        shutil.rmtree(pg_home, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)


def test_a_stack_that_cannot_start_fails_the_session_once_in_one_line(tmp_path):
    tests = tmp_path / "t"
    tests.mkdir()
    (tests / "test_three.py").write_text(
        "def test_a(stack):\n    pass\n\ndef test_b(stack):\n    pass\n\ndef test_c(stack):\n    pass\n"
        "\ndef test_no_stack_needed():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
    env.update(FINSENT_KAFKA="127.0.0.1:1", FINSENT_STATE_DIR=str(tmp_path / "state"),
               FINSENT_STACK_POSTGRES_PORT=PORT)  # nothing answers on port 1: up() fails at once
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.integration.conftest", "-rfEs",
                          "-p", "no:cacheprovider", "--rootdir", str(tests), str(tests)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("1 passed, 3 deselected") and "error" not in summary, out
    lines = [ln for ln in out.splitlines() if "local stack cannot start" in ln]
    assert lines == ["ERROR local stack cannot start: UserError: Kafka at 127.0.0.1:1 (FINSENT_KAFKA) does not answer"]
    assert "Traceback" not in out
