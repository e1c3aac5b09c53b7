"""Alert delivery through apprise to a real HTTP receiver on 127.0.0.1.

Payload field by field, tag routing, retries while the receiver is down,
exactly one delivery across a kill and restarts, concurrent notifiers, the CLI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg2

from alerts.notifier import Notifier
from stream.synthetic.generate import Spike, day_start, generate_stream, quiet_tickers
from tests.support.alert_streams import Receiver, free_port, store_and_observe

REPO = Path(__file__).resolve().parents[2]
START = day_start(hour=7.0)
TICKERS = quiet_tickers(k=3, seed=21)


def spiked_day(n: int = 1, notify: bool = True):
    spikes = [Spike(ticker=TICKERS[i], at=START + timedelta(hours=2, minutes=7 + 17 * i), size=10) for i in range(n)]
    return list(generate_stream(START, timedelta(hours=3), spikes=spikes, seed=4, truth=True))


def with_alerts(settings, **changes):
    return settings.replace(alerts=settings.alerts.replace(**changes))


def alert_rows(settings):
    conn = psycopg2.connect(settings.dsn, options=f"-c search_path={settings.schema}")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, scope, delivery_status, attempts, delivered_to, last_error, delivered_at, title, message"
                        " FROM alerts ORDER BY id")
            return cur.fetchall()
    finally:
        conn.close()


def test_payload_field_by_field_and_tag_routing(pg, tmp_path):
    with Receiver() as rec:
        cfg = tmp_path / "apprise.yml"
        cfg.write_text(
            "urls:\n"
            f"  - {rec.url}/desk:\n"
            f"      tag: {TICKERS[0]}, {TICKERS[2]}\n"
            f"  - {rec.url}/other-desk:\n"
            "      tag: ZZZZ\n"
        )
        settings = pg.replace(alert_urls=(f"{rec.url}/everything",), alert_config=str(cfg))
        new = store_and_observe(settings, spiked_day())
        assert len(new) == 1
        alert = new[0]
        n = Notifier(settings)
        assert n.deliver_pending() == 1
        assert rec.wait_for(2, 10)
        time.sleep(0.3)
        paths = sorted(p for p, *_ in rec.accepted)
        assert paths == ["/desk", "/everything"]  # routed by tag; the other desk's watchlist does not match
        for _path, body, *_ in rec.accepted:
            assert set(body) == {"version", "title", "message", "attachments", "type"}
            assert body["version"] == "1.0"
            assert body["title"] == f"Negative news spike: {TICKERS[0]}"
            assert body["type"] == "warning"
            assert body["attachments"] == []
            assert body["message"] == alert.message
            msg = body["message"]
            assert f"{alert.negative} negative of {alert.articles} articles" in msg
            assert f"z = {alert.z:.1f}" in msg
            assert msg.count("\n   https://") == 3  # three headlines, each with its link
            assert f"finsent alert {alert.key}" in msg
        (row,) = alert_rows(settings)
        _id, scope, status, attempts, delivered_to, last_error, delivered_at, *_ = row
        assert (scope, status, attempts, last_error) == (TICKERS[0], "delivered", 1, None)
        assert len(delivered_to) == 2 and delivered_at is not None
        # nothing is sent twice
        assert n.deliver_pending() == 0
        time.sleep(0.3)
        assert len(rec.requests) == 2
        n.close()


def test_receiver_down_20s_then_up_arrives_once(pg):
    port = free_port()
    settings = with_alerts(pg.replace(alert_urls=(f"json://127.0.0.1:{port}/hook",)), retry_initial_s=0.5, retry_max_s=3.0)
    n = Notifier(settings)
    thread, stop = n.start()
    rec = Receiver(port=port, status=500)
    try:
        assert len(store_and_observe(settings, spiked_day())) == 1
        n.wake()
        time.sleep(12)  # nothing listens: connection refused
        (row,) = alert_rows(settings)
        assert row[2] == "pending" and row[3] >= 3 and "delivery failed" in row[5]
        rec.start()  # up, but failing with HTTP 500
        time.sleep(8)
        assert rec.accepted == [] and len(rec.requests) >= 1
        rec.status = 200  # healthy after 20 s
        assert rec.wait_for(1, 10)
        time.sleep(4)  # would a retry or a second notifier pass send it again?
        assert len(rec.accepted) == 1
        (row,) = alert_rows(settings)
        assert row[2] == "delivered" and row[3] >= 5 and row[5] is None
    finally:
        stop.set()
        n.wake()
        thread.join(10)
        rec.stop()


def _env(settings, urls: str) -> dict:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(REPO), FINSENT_SCHEMA=settings.schema, FINSENT_ALERT_URLS=urls,
               FINSENT_ALERTS_POLL_S="0.2")
    if settings.database_url:
        env["FINSENT_DATABASE_URL"] = settings.database_url.get_secret_value()
    return env


DETECT_AND_HANG = f"""
import sys, time
sys.path.insert(0, {str(REPO)!r})
from stream.base.config import load_settings
from tests.support.alert_streams import store_and_observe
from tests.integration.test_alerts_delivery import spiked_day
new = store_and_observe(load_settings(), spiked_day())
print("DETECTED", len(new), flush=True)
time.sleep(600)  # killed here: after detection, before any delivery
"""


def test_killed_after_detection_before_delivery_arrives_once_after_restart(pg):
    with Receiver() as rec:
        env = _env(pg, f"{rec.url}/hook")
        with subprocess.Popen([sys.executable, "-c", DETECT_AND_HANG], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as worker:  # closes its pipes
            try:
                line = worker.stdout.readline()
                assert line.startswith("DETECTED 1"), line + worker.stderr.read()
            finally:
                worker.send_signal(signal.SIGKILL)
                worker.wait(10)
        (row,) = alert_rows(pg)
        assert row[2] == "pending" and row[3] == 0 and rec.requests == []

        cli = [sys.executable, "-m", "stream.cli", "alerts", "notify"]
        with subprocess.Popen(cli, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as notifier:
            try:
                assert rec.wait_for(1, 30), notifier.stderr.read() if notifier.poll() is not None else "no delivery"
            finally:
                notifier.send_signal(signal.SIGTERM)
                assert notifier.wait(15) == 0
        # another restart: nothing left to send
        again = subprocess.run(cli + ["--once"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "delivered 0 alert(s)" in again.stdout
        time.sleep(0.5)
        assert len(rec.requests) == 1
        assert rec.accepted[0][1]["title"] == f"Negative news spike: {TICKERS[0]}"
        (row,) = alert_rows(pg)
        assert row[2] == "delivered" and row[3] == 1


def test_concurrent_notifiers_send_each_alert_once(pg):
    with Receiver() as rec:
        settings = pg.replace(alert_urls=(f"{rec.url}/hook",))
        assert len(store_and_observe(settings, spiked_day(3))) == 3
        notifiers = [Notifier(settings) for _ in range(3)]
        counts = []
        threads = [threading.Thread(target=lambda n=n: counts.append(n.deliver_pending())) for n in notifiers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sum(counts) == 3
        assert rec.wait_for(3, 5)
        time.sleep(0.3)
        assert sorted(b["title"] for _, b, *_ in rec.requests) == sorted(f"Negative news spike: {t}" for t in TICKERS)
        for n in notifiers:
            n.close()


def test_suppressed_and_unrouted_alerts_are_not_sent(pg):
    with Receiver() as rec:
        settings = pg.replace(alert_urls=(f"{rec.url}/hook",))
        assert len(store_and_observe(settings, spiked_day(), replay=True, notify=False)) == 1
        assert Notifier(settings).deliver_pending() == 0
        (row,) = alert_rows(settings)
        assert row[2] == "suppressed"
        # with no URL configured at all, a pending alert is marked unrouted (never sent later by surprise)
        conn = psycopg2.connect(settings.dsn, options=f"-c search_path={settings.schema}")
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE alerts SET delivery_status = 'pending'")
        conn.close()
        assert Notifier(pg).deliver_pending() == 0
        (row,) = alert_rows(settings)
        assert row[2] == "unrouted" and "no apprise URL" in row[5]
        time.sleep(0.2)
        assert rec.requests == []


def test_cli_list_and_test(pg):
    assert len(store_and_observe(pg, spiked_day(), replay=True, notify=False)) == 1
    with Receiver() as rec:
        down = f"json://127.0.0.1:{free_port()}/nobody"
        env = _env(pg, f"{rec.url}/hook,{down}")
        out = subprocess.run([sys.executable, "-m", "stream.cli", "alerts", "list"], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert TICKERS[0] in out.stdout and "suppressed [replay]" in out.stdout and "z" in out.stdout.splitlines()[0]
        out = subprocess.run([sys.executable, "-m", "stream.cli", "alerts", "list", "--since", "2000-01-01", "--json"],
                             env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
        import json

        (obj,) = [json.loads(line) for line in out.stdout.splitlines()]
        assert obj["scope"] == TICKERS[0] and obj["replayed"] is True
        out = subprocess.run([sys.executable, "-m", "stream.cli", "alerts", "test"], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        lines = out.stdout.splitlines()
        assert any(line.startswith("ok") and f":{rec.port}/..." in line for line in lines)
        assert any(line.startswith("FAILED") and down.rsplit("/", 1)[0] + "/..." in line for line in lines)
        assert rec.wait_for(1, 5) and rec.accepted[0][1]["title"] == "finsent test notification"
