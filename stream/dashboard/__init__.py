"""``finsent dashboard``: the live web page and its JSON API on 127.0.0.1, reading as the analyst role.

* :mod:`stream.dashboard.params` -- request parameters, validated (pure);
* :mod:`storage.dashboard` -- the bounded, parameterized SQL;
* :mod:`stream.dashboard.server` -- the Starlette app (pages, ``/api/``, live alerts by SSE);
* :mod:`stream.dashboard.serve` -- uvicorn on 127.0.0.1, in the foreground or in a thread;
* this module -- the command, and a background dashboard for ``finsent demo`` (pid file under
  the state dir; ``finsent dashboard --stop`` and ``finsent down`` stop it).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg2

from deploy.localstack import pid_alive
from storage.db import check_schema, first_line, redact
from stream.base.errors import UserError
from stream.demo import DEMO_SCHEMA, demo_settings

log = logging.getLogger("finsent.dashboard")

DEFAULT_PORT = 18080
HOST = "127.0.0.1"


def register(sub) -> None:
    p = sub.add_parser(
        "dashboard",
        help="the live web dashboard and its JSON API under /api/, on 127.0.0.1 (read-only analyst role)",
        description=(
            "Serve the dashboard (overview, ticker/topic pages, alerts pushed live) and its JSON API on "
            f"http://{HOST}:PORT/. Reads PostgreSQL as the read-only finsent_analyst role only."
        ),
    )
    p.add_argument("--port", type=int, default=None,
                   help=f"TCP port on 127.0.0.1 (default: the dashboard_port setting, FINSENT_DASHBOARD_PORT, {DEFAULT_PORT})")
    p.add_argument("--schema", metavar="NAME", help="PostgreSQL schema to show (default: FINSENT_SCHEMA or 'public')")
    p.add_argument("--stop", action="store_true", help="stop the dashboard that 'finsent demo' left running")
    p.set_defaults(func=cmd_dashboard)


def _port(args_port: int | None, settings) -> int:
    """``--port``, else the ``dashboard_port`` setting (``FINSENT_DASHBOARD_PORT``, default 18080)."""
    port = args_port if args_port is not None else settings.dashboard_port
    if not 1 <= port <= 65535:
        raise UserError(f"dashboard port must be 1..65535, not {port}")
    return port


def settings_for(base, schema: str | None):
    """``base`` settings for a schema; the demo's schema gets the demo's topics and consumer group (for the lag)."""
    s = base
    if schema:
        s = s.replace(schema=check_schema(schema))
    if s.schema == DEMO_SCHEMA:
        s = demo_settings(s)
    return s


def cmd_dashboard(args) -> int:
    if args.stop:
        stopped = stop_background(args.settings.state_dir)
        print("stopped the background dashboard" if stopped else "no background dashboard was running")
        return 0
    # uvicorn, starlette and jinja2 would add 150-290 ms to every finsent command's start-up (measured
    # on top of the CLI's own imports, loaded 2-core machine): loaded only when the dashboard starts
    from stream.dashboard.serve import uvicorn_server
    from stream.dashboard.server import create_app

    settings = settings_for(args.settings, args.schema)
    port = _port(args.port, settings)
    app = create_app(settings)
    _preflight(app, settings)
    print(f"finsent dashboard: http://{HOST}:{port}/  (schema '{settings.schema}', read-only; Ctrl-C stops it)",
          flush=True)
    server = uvicorn_server(app, port)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when the lifespan fails (e.g. the role can write)
        return int(exc.code or 1)
    if not server.started:
        raise UserError(f"the dashboard did not start (port {port} in use? database reachable as finsent_analyst?)")
    return 0


def _preflight(app, settings) -> None:
    """Fail with a clear message before serving: the analyst login works and cannot write."""
    from stream.dashboard.server import check_read_only  # start-up cost: see cmd_dashboard

    try:
        with app.state.pool.cursor() as cur:
            check_read_only(cur)
    except psycopg2.Error as exc:
        raise UserError(f"the dashboard cannot read the database as {redact(settings.analyst_dsn)}: {first_line(exc)} "
                        "(is the stack up? has 'finsent db upgrade' created the finsent_analyst role?)") from None
    finally:
        app.state.pool.close()


# --------------------------------------------------------------------------- background (the demo)
def _pid_file(state_dir: Path) -> Path:
    return Path(state_dir) / "dashboard.pid"


def _ours(pid: int) -> bool:
    """The pid is a finsent dashboard process (not a reused pid of something else)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"dashboard" in cmd and any(b"stream.cli" in c or c.endswith(b"finsent") for c in cmd)


def stop_background(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the dashboard started by :func:`start_background` (by the pid in its pid file)."""
    pf = _pid_file(state_dir)
    try:
        pid = int(pf.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    stopped = False
    if pid_alive(pid) and _ours(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        stopped = True
    pf.unlink(missing_ok=True)
    return stopped


def healthy(port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/api/meta", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def start_background(settings, port: int | None = None, wait_s: float = 30.0) -> str:
    """Start ``finsent dashboard --schema <settings.schema>`` detached (log and pid under the state dir).

    A dashboard this function started before is stopped first.  Returns the base URL; UserError when
    it does not answer within ``wait_s`` (its log says why).
    """
    port = _port(port, settings)
    state_dir = Path(settings.state_dir)
    stop_background(state_dir)
    if healthy(port, timeout=1.0):
        raise UserError(f"something else already serves port {port}; stop it or set FINSENT_DASHBOARD_PORT")
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "dashboard.log"
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "dashboard", "--schema", settings.schema, "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "FINSENT_STATE_DIR": str(state_dir)},
        )
    _pid_file(state_dir).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _pid_file(state_dir).unlink(missing_ok=True)
            tail = log_path.read_text(errors="replace")[-1500:]
            raise UserError(f"the dashboard exited with status {proc.returncode}; its log ({log_path}):\n{tail}")
        if healthy(port):
            return f"http://{HOST}:{port}"
        time.sleep(0.3)
    stop_background(state_dir)
    raise UserError(f"the dashboard did not answer on port {port} within {wait_s:.0f}s; see {log_path}")
