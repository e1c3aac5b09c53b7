"""``finsent up | down | status``: the embedded local stack."""

from __future__ import annotations

import json
import time

from deploy import localstack


def register(sub) -> None:
    p = sub.add_parser("up", help="start the local stack (Kafka KRaft + PostgreSQL) and apply migrations; idempotent")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="stop the local stack started by 'finsent up' (data is kept)")
    p.set_defaults(func=cmd_down)
    p = sub.add_parser("status", help="one line per service and the health of each polled feed; exit 1 if a "
                                      "service is down")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)


def cmd_up(args) -> int:
    settings = args.settings
    t0 = time.monotonic()
    already = (
        (not settings.uses_local_kafka or localstack.kafka_pid(settings))
        and (not settings.uses_local_postgres or localstack.pg_pid(settings))
    )
    localstack.up(settings)
    if already:
        print("finsent: the stack was already up; nothing started")
    else:
        print(f"finsent: stack ready in {time.monotonic() - t0:.1f}s (state dir {settings.state_dir})")
    return 0


def cmd_down(args) -> int:
    from stream.dashboard.background import stop_background  # here: up and status do not need it

    settings = args.settings
    stop_background(settings.state_dir)  # the dashboard 'finsent demo' left running, if any
    localstack.down(settings)
    return 0


def _feeds(settings) -> tuple[list[dict] | None, str | None]:
    """The feeds view of the settings' schema, or why there is none."""
    from storage.feeds import read_feeds  # here: up/down do not need it

    try:
        rows = read_feeds(settings.dsn, settings.schema)
    except Exception as exc:  # noqa: BLE001 - status reports, it never fails on this
        return None, f"cannot read: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}"
    if rows is None:
        return None, f"no feeds table in schema '{settings.schema}' (finsent db upgrade)"
    return rows, None


def cmd_status(args) -> int:
    from stream.sources.report import health_table  # here: up/down do not need it

    settings = args.settings
    st = localstack.status(settings)
    ok = st["kafka_ok"] and st["postgres_ok"]
    feeds, why = _feeds(settings) if st["postgres_ok"] else (None, "the database is down")
    if args.json:
        st["feeds"] = [{k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in r.items()}
                       for r in feeds] if feeds is not None else None
        print(json.dumps(st))
        return 0 if ok else 1
    if st["kafka_ok"]:
        what = (f"Apache Kafka {st['kafka_version']} ({st['kafka_mode']}, cluster {st['kafka_cluster_id']}, pid {st['kafka_pid']})"
                if st["kafka_pid"] else f"external broker (cluster {st['kafka_cluster_id']})")
        print(f"kafka     up    {st['kafka']}  {what}")
    else:
        print(f"kafka     DOWN  {st['kafka']}")
    if st["postgres_ok"]:
        what = f"PostgreSQL {st['postgres_version']}" + (f" (pid {st['postgres_pid']})" if st["postgres_pid"] else " (external)")
        print(f"postgres  up    {st['database_url']}  {what}")
    else:
        print(f"postgres  DOWN  {st['database_url']}")
    if feeds:
        bad = sum(1 for r in feeds if r["state"] != "ok")
        print(f"feeds     {len(feeds)} polled, {bad} failing or unhealthy (schema {settings.schema}):")
        print(health_table(feeds, indent="  "))
    else:
        print(f"feeds     {why or 'none polled yet (finsent ingest)'}")
    return 0 if ok else 1
