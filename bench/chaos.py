"""Chaos soak: the pipeline under kill -9, PostgreSQL and broker restarts and a receiver outage.

On its OWN local stack (own state dir and ports, started here and stopped here by PID), it
replays a generated stream with planted negative bursts into news.raw (``--notify``: alerts
are delivered), runs the real ``finsent worker`` (with its alert notifier) under a supervisor
that restarts it whenever it dies, and meanwhile, at random moments:

* ``--kills`` ``kill -9`` of the worker (some of them while an alert is detected but not yet
  delivered: they are counted);
* ``--pg-restarts`` PostgreSQL restarts and ``--broker-restarts`` Kafka broker restarts;
* one receiver outage of ``--outage-s`` seconds (the apprise ``json://`` receiver on 127.0.0.1).

Then it checks: articles = items exactly (distinct ids too), minute buckets of scope 'all' sum
to items, every alert row is delivered, the receiver got each alert's key at least once;
duplicates are counted and reported.  Exit status 0 when every check passes.

Usage: python bench/chaos.py [--items 20000] [--kills 20] [--pg-restarts 2] [--broker-restarts 2]
                             [--outage-s 30] [--seed 12] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg2

from deploy import localstack
from storage.db import fetch_all
from stream.base.config import load_settings
from stream.process import WorkerProcess
from stream.synthetic.generate import Spike, day_start, generate_stream, quiet_tickers, write_jsonl
from tests.support.alert_streams import Receiver, free_port


def _env(args, state: Path, receiver_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
    env.update(
        FINSENT_STATE_DIR=str(state),
        FINSENT_STACK_KAFKA_PORT=str(args.kafka_port),
        FINSENT_STACK_CONTROLLER_PORT=str(args.kafka_port + 1),
        FINSENT_STACK_POSTGRES_PORT=str(args.pg_port),
        FINSENT_ALERT_URLS=f"json://127.0.0.1:{receiver_port}/hook",
        FINSENT_ALERTS_RETRY_INITIAL_S="0.5",
        FINSENT_ALERTS_RETRY_MAX_S="4",
        FINSENT_ALERTS_POLL_S="0.5",
        PYTHONUNBUFFERED="1",
    )
    return env


def messages(n: int, seed: int) -> list[dict]:
    """``n`` generated headlines (40 a minute) with a planted negative burst every 75 minutes."""
    start = day_start(hour=6.0)
    hours = n / 40 / 60 + 1
    bursts = max(1, int((hours - 0.5) * 60 // 75))
    tickers = quiet_tickers(k=bursts, seed=seed)
    spikes = [Spike(ticker=t, at=start + timedelta(minutes=30 + 75 * i, seconds=17), size=12)
              for i, t in enumerate(tickers)]
    out = []
    for k, m in enumerate(generate_stream(start, timedelta(hours=hours), spikes=spikes, seed=seed)):
        out.append(dict(m, id=f"c{k}"))
        if len(out) == n:
            return out
    raise SystemExit(f"the generator gave only {len(out)} items")


def _key(message: str) -> str:
    """The stable key a notification carries (``finsent alert <kind>/<scope>/<window>/<rule>``)."""
    m = re.search(r"finsent alert \S+", message)
    return m.group(0) if m else message.strip()[-200:]


class Soak:
    def __init__(self, args) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.state = Path(args.state_dir or tempfile.mkdtemp(prefix="finsent-chaos-"))
        self.state.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.env = _env(args, self.state, self.port)
        os.environ.clear()
        os.environ.update(self.env)  # this process and every child use the soak's own stack
        self.settings = load_settings(self.env)
        self.receiver = Receiver(port=self.port)
        self.log = self.state / "worker.log"
        self.worker = None
        self.counts = dict(kills=0, kills_with_alert_pending=0, pg_restarts=0, broker_restarts=0,
                           outages=0, worker_starts=0, worker_exits_on_its_own=0)
        self.outage_until: float | None = None

    # ------------------------------------------------------------ helpers
    def q(self, sql: str, params=()):
        try:
            return fetch_all(self.settings.dsn, self.settings.schema, sql, params)
        except psycopg2.Error:
            return None  # PostgreSQL is being restarted

    def articles(self) -> int:
        r = self.q("SELECT count(*) FROM articles")
        return r[0][0] if r else -1

    def pending_alerts(self) -> int:
        r = self.q("SELECT count(*) FROM alerts WHERE delivery_status = 'pending'")
        return r[0][0] if r else 0

    def say(self, msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    def start_worker(self) -> None:
        self.worker = WorkerProcess(self.settings, self.log).start()
        self.counts["worker_starts"] += 1

    def supervise(self) -> None:
        """Restart the worker when it died on its own (as systemd/compose would) and end outages."""
        if self.worker is not None and not self.worker.alive():
            self.counts["worker_exits_on_its_own"] += 1
            self.say(f"worker exited on its own (code {self.worker.proc.returncode}): restarted")
            self.start_worker()
        if self.outage_until is not None and time.monotonic() >= self.outage_until:
            self.receiver.start()
            self.outage_until = None
            self.say("receiver back up")

    def wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.supervise()
            time.sleep(0.1)

    # ------------------------------------------------------------ the soak
    def prepare(self) -> None:
        self.say(f"own stack in {self.state} (kafka :{self.args.kafka_port}, postgres :{self.args.pg_port})")
        localstack.up(self.settings, quiet=True)
        msgs = messages(self.args.items, self.args.seed)
        archive = self.state / "stream.jsonl"
        write_jsonl(archive, msgs)
        self.receiver.start()
        res = subprocess.run([sys.executable, "-m", "stream.cli", "replay", str(archive), "--notify"],
                             env=self.env, cwd=REPO, capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            raise SystemExit(f"replay failed: {res.stderr[-2000:]}")
        self.say(f"replayed {len(msgs)} items into news.raw (--notify)")

    def event(self, kind: str) -> None:
        if kind == "kill":
            pending = self.pending_alerts()
            self.worker.kill9()
            self.counts["kills"] += 1
            self.counts["kills_with_alert_pending"] += pending > 0
            self.say(f"kill -9 #{self.counts['kills']} at {self.articles()} articles"
                     + (f" ({pending} alert(s) detected, not yet delivered)" if pending else ""))
            self.start_worker()
        elif kind == "pg":
            self.say("PostgreSQL restart")
            localstack.stop_postgres(self.settings, quiet=True)
            self.wait(self.rng.uniform(1, 5))
            localstack.start_postgres(self.settings, quiet=True)
            self.counts["pg_restarts"] += 1
        elif kind == "kafka":
            self.say("broker restart")
            localstack.stop_kafka(self.settings, quiet=True)
            self.wait(self.rng.uniform(1, 5))
            localstack.start_kafka(self.settings, quiet=True)
            self.counts["broker_restarts"] += 1
        elif kind == "outage":
            self.say(f"receiver down for {self.args.outage_s:.0f}s")
            self.receiver.stop()
            self.outage_until = time.monotonic() + self.args.outage_s
            self.counts["outages"] += 1

    def run(self) -> dict:
        a = self.args
        t0 = time.monotonic()
        self.prepare()
        events = (["kill"] * a.kills + ["pg"] * a.pg_restarts + ["kafka"] * a.broker_restarts
                  + (["outage"] if a.outage_s > 0 else []))
        self.rng.shuffle(events)
        gap = max(50, a.items // (len(events) + 2))
        self.start_worker()
        deadline = time.monotonic() + a.timeout_s
        last = 0
        while events and time.monotonic() < deadline:
            target = last + self.rng.randint(gap // 3, gap)
            # an event fires after some progress, or at once when an alert waits for delivery and a
            # kill is due (the moment between detection and delivery), or after 120 s regardless
            waited = time.monotonic()
            while time.monotonic() < deadline:
                self.supervise()
                n = self.articles()
                if n >= target or time.monotonic() - waited > 120:
                    break
                if events[0] == "kill" and self.pending_alerts() > 0 and n > last:
                    break
                time.sleep(0.2)
            last = max(last, self.articles())
            self.event(events.pop(0))
        self.say("all events done; waiting for the stream to drain and the alerts to be delivered")
        while time.monotonic() < deadline:
            self.supervise()
            if self.articles() == a.items and self.pending_alerts() == 0 and self.outage_until is None:
                self.wait(5)  # anything still moving (a retry, a second notifier pass)?
                if self.articles() == a.items and self.pending_alerts() == 0:
                    break
            time.sleep(0.5)
        self.worker.stop()
        elapsed = time.monotonic() - t0
        return self.check(elapsed)

    def check(self, elapsed: float) -> dict:
        n = self.args.items
        articles, distinct = self.q("SELECT count(*), count(DISTINCT id) FROM articles")[0]
        buckets = int(self.q("SELECT coalesce(sum(articles), 0) FROM sentiment_minute WHERE scope_kind = 'all'")[0][0])
        # an alert that joins an open incident is stored 'grouped' and by design not sent: its
        # incident's first alert is; every other alert must be delivered and received
        rows = self.q("SELECT id, delivery_status, message, coalesce(incident_id, id) FROM alerts ORDER BY id")
        status = {i: st for i, st, _, _ in rows}
        sent = [(i, st, m) for i, st, m, _ in rows if st != "grouped"]
        grouped_ok = all(status.get(inc) == "delivered" for _, st, _, inc in rows if st == "grouped")
        keys = [_key(m) for _, _, m in sent]
        got = [_key(str(b.get("message", ""))) for _, b, *_ in self.receiver.accepted]
        missing = sorted(set(keys) - set(got))
        res = dict(
            items=n, articles=articles, distinct_ids=distinct, bucket_sum_all=buckets,
            alerts=len(rows), alerts_grouped=len(rows) - len(sent), alerts_to_send=len(sent),
            alerts_delivered=sum(st == "delivered" for _, st, _ in sent),
            alert_keys_received=len(set(keys) & set(got)), alert_keys_missing=missing,
            receiver_posts_accepted=len(got), duplicate_deliveries=len(got) - len(set(got)),
            receiver_posts_refused=len(self.receiver.requests) - len(self.receiver.accepted),
            elapsed_s=round(elapsed, 1), **self.counts,
        )
        res["checks"] = {
            "articles == items": articles == n and distinct == n,
            "minute buckets 'all' sum to items": buckets == n,
            "every alert row delivered (grouped ones: their incident)": res["alerts_delivered"] == len(sent)
            and grouped_ok,
            "receiver got each alert key": not missing,
            "planned chaos performed": (self.counts["kills"] == self.args.kills
                                        and self.counts["pg_restarts"] == self.args.pg_restarts
                                        and self.counts["broker_restarts"] == self.args.broker_restarts),
        }
        res["ok"] = all(res["checks"].values())
        return res

    def close(self) -> None:
        if self.worker is not None:
            self.worker.kill9()
        self.receiver.stop()
        localstack.down(self.settings, quiet=True)  # stops only this soak's servers, by PID
        if self.args.state_dir is None and not self.args.keep:  # our temporary stack: remove it

            pg = localstack.pg_root(self.settings)
            if not str(pg).startswith(str(self.state)):  # the cluster was kept where postgres can enter
                shutil.rmtree(pg.parent, ignore_errors=True)
            shutil.rmtree(self.state, ignore_errors=True)
        else:
            self.say(f"stack data kept in {self.state}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--pg-restarts", type=int, default=2)
    ap.add_argument("--broker-restarts", type=int, default=2)
    ap.add_argument("--outage-s", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--kafka-port", type=int, default=29392, help="its own broker port (controller: +1)")
    ap.add_argument("--pg-port", type=int, default=29432, help="its own PostgreSQL port")
    ap.add_argument("--state-dir", help="its own state dir (default: a fresh temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary state dir (logs, data) afterwards")
    ap.add_argument("--timeout-s", type=float, default=3000.0)
    ap.add_argument("--json", help="write the figures to this file too")
    args = ap.parse_args(argv)
    soak = Soak(args)
    try:
        res = soak.run()
    finally:
        soak.close()
    print("\nchaos soak: " + ", ".join(f"{k}={v}" for k, v in res.items() if k not in ("checks",)))
    for name, ok in res["checks"].items():
        print(f"  {'ok    ' if ok else 'FAILED'} {name}")
    print("all checks passed" if res["ok"] else "SOME CHECKS FAILED")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
