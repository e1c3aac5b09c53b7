"""The local stack's broker process outlives the call that starts it without a ResourceWarning."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

from deploy import localstack
from stream.base.config import load_settings


def test_started_broker_is_kept_then_reaped_without_a_resource_warning(tmp_path: Path, monkeypatch):
    # CI (a session that starts the stack) failed its first test: the broker's Popen was dropped while the
    # broker ran, and "subprocess N is still running" is an error under filterwarnings = error
    settings = load_settings().replace(state_dir=tmp_path)
    data = tmp_path / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("formatted\n")  # no storage format step
    monkeypatch.setattr(localstack, "fetch_kafka", lambda version, quiet=False: tmp_path)
    monkeypatch.setattr(localstack, "_java_cmd", lambda *a, **k: ["sleep", "60"])
    monkeypatch.setattr(localstack, "kafka_pid", lambda s: None)
    opened = iter([False, False])  # both ports free before the start, then the broker answers
    monkeypatch.setattr(localstack, "port_open", lambda port, *a, **k: next(opened, True))
    monkeypatch.setattr(localstack, "kafka_ready", lambda bootstrap, timeout=3.0: {"brokers": 1})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        localstack.start_kafka(settings, quiet=True)
        gc.collect()
        pid = int((tmp_path / "kafka" / "kafka.pid").read_text())
        assert localstack.pid_alive(pid)
        localstack.stop_pid(pid, "kafka", timeout=10, quiet=True)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]
    assert not localstack.pid_alive(pid)
