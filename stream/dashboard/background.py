"""A dashboard in the background, for ``finsent demo``: started detached, its pid file under the state
dir, stopped by ``finsent dashboard --stop`` and ``finsent down``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from deploy.localstack import pid_alive
from stream.base.errors import UserError
from stream.dashboard import HOST


def dashboard_port(args_port: int | None, settings) -> int:
    """``--port``, else the ``dashboard_port`` setting (``FINSENT_DASHBOARD_PORT``, default 18080)."""
    port = args_port if args_port is not None else settings.dashboard_port
    if not 1 <= port <= 65535:
        raise UserError(f"dashboard port must be 1..65535, not {port}")
    return port



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
    port = dashboard_port(port, settings)
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
