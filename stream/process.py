"""Run a ``finsent worker`` as a child process on given settings (demo, benchmarks, tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stream.base.config import settings_to_env

if TYPE_CHECKING:  # pydantic: not for every command's start-up
    from stream.base.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment that makes a child ``finsent`` process see exactly ``settings`` (all of them, in
    ``FINSENT_SETTINGS_JSON``; inherited ``FINSENT_<FIELD>`` variables are dropped), then ``extra``
    (e.g. ``FINSENT_ALIASES=...``: a variable overrides its one field in the child)."""
    env = settings_to_env(settings, os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class WorkerProcess:
    """``python -m stream.cli worker`` in its own process group, output to a log file."""

    command: tuple[str, ...] = ("-m", "stream.cli", "worker")  # bench/worker.py for the null model

    def __init__(self, settings: Settings, log_path: Path, *args: str, command: tuple[str, ...] | None = None,
                 **env: str) -> None:
        self.env = settings_env(settings, **env)
        self.log_path = Path(log_path)
        self.args = args
        if command is not None:
            self.command = tuple(command)
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, *self.command, *self.args],
                                         env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM (graceful: the current batch finishes or is abandoned unacked), then SIGKILL."""
        if self.proc is None:
            return None
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.proc.returncode

    def log(self, tail: int = 5000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""
