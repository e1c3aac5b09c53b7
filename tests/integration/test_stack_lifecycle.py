"""`finsent up / status / down / up` on a private stack: idempotence, durability, no leftovers.

Runs the real CLI in subprocesses against its own state dir and ports, so it never
disturbs the shared stack the other integration tests use.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
from kafka import KafkaConsumer, KafkaProducer

from deploy.localstack import pid_alive

pytestmark = pytest.mark.slow


@pytest.fixture
def private_env():
    state = Path(tempfile.mkdtemp(prefix="finsent-lifecycle-"))
    os.chmod(state, 0o755)  # the database server runs as 'postgres' when we are root
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
    env.update(
        FINSENT_STATE_DIR=str(state),
        FINSENT_STACK_KAFKA_PORT="29092",
        FINSENT_STACK_CONTROLLER_PORT="29093",
        FINSENT_STACK_POSTGRES_PORT="25432",
    )
    yield env
    subprocess.run([sys.executable, "-m", "stream.cli", "down"], env=env, capture_output=True)
    shutil.rmtree(state, ignore_errors=True)


def finsent(env, *args, check=True):
    res = subprocess.run([sys.executable, "-m", "stream.cli", *args], env=env,
                         capture_output=True, text=True, timeout=240)
    if check and res.returncode != 0:
        raise AssertionError(f"finsent {' '.join(args)} -> {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def test_up_status_down_up_keeps_data_and_leaves_no_process(private_env):
    env = private_env
    first = finsent(env, "up")
    assert "ready" in first.stdout
    again = finsent(env, "up")
    assert "already up" in again.stdout and "starting" not in again.stdout

    st = json.loads(finsent(env, "status", "--json").stdout)
    assert st["kafka"] == "127.0.0.1:29092" and st["kafka_ok"] and st["postgres_ok"]
    assert st["database_url"].startswith("postgresql://") and ":***@127.0.0.1:25432/" in st["database_url"]
    human = finsent(env, "status").stdout
    assert ("Apache Kafka 4.1.1 (KRaft" in human and "PostgreSQL 15" in human) or "PostgreSQL 1" in human
    pids = [st["kafka_pid"], st["postgres_pid"]]
    assert all(pids)

    dsn = "postgresql://finsent:finsent@127.0.0.1:25432/finsent"
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE durable (v text)")
        cur.execute("INSERT INTO durable VALUES ('kept')")
    producer = KafkaProducer(bootstrap_servers="127.0.0.1:29092", acks="all", enable_idempotence=True)
    producer.send("durable.topic", b"kept-message").get(timeout=30)
    producer.close()

    finsent(env, "down")
    time.sleep(0.5)
    assert not any(pid_alive(p) for p in pids), "a broker or database process outlived 'finsent down'"
    down = finsent(env, "status", check=False)
    assert down.returncode == 1 and "DOWN" in down.stdout

    finsent(env, "up")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT v FROM durable")
        assert cur.fetchall() == [("kept",)]
    consumer = KafkaConsumer("durable.topic", bootstrap_servers="127.0.0.1:29092",
                             auto_offset_reset="earliest", consumer_timeout_ms=10000)
    assert [r.value for r in consumer] == [b"kept-message"]
    consumer.close()
    finsent(env, "down")


def test_port_taken_is_a_clear_error(private_env):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 29092))
        s.listen()
        res = finsent(private_env, "up", check=False)
    assert res.returncode == 2
    assert "port 127.0.0.1:29092 is taken" in res.stderr
    assert "Traceback" not in res.stderr
