"""Worker metrics: Prometheus counters and the periodic progress line."""

import logging
import urllib.request

from prometheus_client import CollectorRegistry, generate_latest

from stream.core.pipeline import BatchResult, DeadLetter, RawRecord
from stream.metrics import WorkerMetrics


def _result():
    res = BatchResult(received=5, inserted=[object(), object()], skipped=1, infer_s=0.02, db_s=0.01)
    res.items = [object()] * 3
    res.dead = [DeadLetter(RawRecord(b"x"), "not_json", ""), DeadLetter(RawRecord(b"y"), "not_json", "")]
    return res


def test_counters_and_progress_line(caplog):
    reg = CollectorRegistry()
    m = WorkerMetrics(registry=reg)
    with caplog.at_level(logging.INFO, logger="finsent.worker"):
        m.observe(_result(), lag=42, log_every=2)
        assert not caplog.records
        m.observe(_result(), lag=7, log_every=2)
    text = generate_latest(reg).decode()
    assert 'finsent_records_total{outcome="stored"} 4.0' in text
    assert 'finsent_records_total{outcome="skipped"} 2.0' in text
    assert 'finsent_deadletters_total{reason="not_json"} 4.0' in text
    assert "finsent_consumer_lag 7.0" in text
    line = caplog.records[-1].getMessage()
    assert "records/s" in line and "mean batch 5.0" in line and "inference 20.0 ms" in line and "lag 7" in line


def test_metrics_endpoint_on_loopback():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reg = CollectorRegistry()
    m = WorkerMetrics(registry=reg)
    m.serve(port)
    m.observe(_result(), lag=None, log_every=100)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "finsent_batches_total 1.0" in body
