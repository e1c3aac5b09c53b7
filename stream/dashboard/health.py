"""Broker reachability and consumer lag for ``/api/health`` (kafka-python, short timeouts)."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition


def broker_health(bootstrap: str, topic: str, group: str, timeout_s: float = 3.0) -> dict[str, Any]:
    """``{"ok", "ms", "topic", "group", "partitions", "lag", "uncommitted_partitions"}`` or ``{"ok": False, "error"}``.

    The lag is the sum over the topic's partitions of (log end offset - the group's committed
    offset), over partitions the group has committed; partitions it never committed are counted apart.
    """
    t0 = time.monotonic()
    ms = int(timeout_s * 1000)
    admin = consumer = None
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="finsent-dashboard",
                                 request_timeout_ms=ms, bootstrap_timeout_ms=ms, connections_max_idle_ms=max(ms * 3, 10_000))
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="finsent-dashboard", group_id=None,
                                 enable_auto_commit=False, request_timeout_ms=max(ms, 1000) + 1,
                                 consumer_timeout_ms=ms, bootstrap_timeout_ms=ms)
        parts = consumer.partitions_for_topic(topic) or set()
        out: dict[str, Any] = {"ok": True, "topic": topic, "group": group, "partitions": len(parts)}
        if not parts:
            out.update(lag=None, uncommitted_partitions=0, note=f"topic {topic} does not exist yet")
        else:
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            ends = consumer.end_offsets(tps)
            offsets = admin.list_group_offsets({group: tps}).get(group, {})
            committed = {tp: om.offset for tp, om in offsets.items()
                         if tp.topic == topic and om is not None and om.offset is not None and om.offset >= 0}
            out["lag"] = sum(max(0, ends[tp] - committed[tp]) for tp in tps if tp in committed)
            out["uncommitted_partitions"] = sum(1 for tp in tps if tp not in committed)
            out["end_offsets"] = sum(ends.values())
        out["ms"] = round((time.monotonic() - t0) * 1000, 1)
        return out
    except Exception as exc:  # noqa: BLE001 - health reports any broker failure instead of failing itself
        return {"ok": False, "topic": topic, "group": group, "error": f"{type(exc).__name__}: {exc}"[:300],
                "ms": round((time.monotonic() - t0) * 1000, 1)}
    finally:
        for c in (consumer, admin):
            if c is not None:
                try:
                    c.close()
                except Exception:  # noqa: BLE001 - closing a half-open client
                    pass
