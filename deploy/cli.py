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
    p = sub.add_parser("status", help="one line per service; exit 1 if any is down")
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
    from stream.dashboard import stop_background  # here: starlette/jinja2, 0.15-0.29 s of start-up

    settings = args.settings
    stop_background(settings.state_dir)  # the dashboard 'finsent demo' left running, if any
    localstack.down(settings)
    return 0


def cmd_status(args) -> int:
    settings = args.settings
    st = localstack.status(settings)
    ok = st["kafka_ok"] and st["postgres_ok"]
    if args.json:
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
    return 0 if ok else 1
