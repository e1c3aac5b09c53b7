"""No log line, CLI output or table holds a configured credential: the apprise URLs' password,
header token and path token are scanned for in everything a failing-then-working delivery
leaves behind (notifier logs at DEBUG, `finsent alerts list/test`, every alerts column)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.integration.test_alerts_delivery import REPO, _env, alert_rows, spiked_day
from tests.integration.workers import query
from tests.support.alert_streams import Receiver, free_port, store_and_observe

PASSWORD = "Pw-Secret-9x7q"
TOKEN = "Tok-Secret-3k1z"
PATH_TOKEN = "PathTok-Secret-77w"
SECRETS = (PASSWORD, TOKEN, PATH_TOKEN)


def test_apprise_secrets_never_reach_logs_outputs_or_tables(stack, schema):
    pg = stack.settings.replace(schema=schema)
    port = free_port()
    urls = (f"json://alice:{PASSWORD}@127.0.0.1:{port}/hook?-X-Api-Token={TOKEN},"
            f"json://127.0.0.1:{port}/{PATH_TOKEN}")
    settings = pg.replace(alert_urls=tuple(urls.split(",")))
    assert len(store_and_observe(settings, spiked_day())) == 1
    env = _env(pg, urls)
    env.update(FINSENT_ALERTS_RETRY_INITIAL_S="0.3", FINSENT_ALERTS_RETRY_MAX_S="1")
    cli = [sys.executable, "-m", "stream.cli"]
    notifier = subprocess.Popen(cli + ["alerts", "notify"], env=env,
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rec = Receiver(port=port, status=500)
    try:
        time.sleep(4)  # connection refused: failures logged and stored
        rec.start()  # then HTTP 500
        time.sleep(3)
        failing = alert_rows(settings)[0]
        rec.status = 200
        assert rec.wait_for(2, 30), "not delivered"
    finally:
        notifier.send_signal(signal.SIGTERM)
        try:
            out, _ = notifier.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            notifier.kill()
            out, _ = notifier.communicate()
        rec.stop()
    assert failing[3] >= 1 and failing[5], failing  # attempts and last_error were written while failing
    listed = subprocess.run(cli + ["alerts", "list"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    tested = subprocess.run(cli + ["alerts", "test"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    tables = query(settings, "SELECT string_agg(row_to_json(a)::text, E'\\n') FROM alerts a")[0][0]
    texts = {"notifier log": out, "alerts list": listed.stdout + listed.stderr,
             "alerts test": tested.stdout + tested.stderr, "alerts table": tables,
             "last_error while failing": str(failing)}
    assert "delivery failed" in texts["last_error while failing"]
    for where, text in texts.items():
        for secret in SECRETS:
            assert secret not in (text or ""), f"{secret!r} leaked into the {where}:\n{text[:3000]}"
