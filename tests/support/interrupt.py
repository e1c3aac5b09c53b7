"""Count (and optionally kill at) the calls of a module function: how the resume tests stop a training run."""

from __future__ import annotations

import os
from typing import Any


def patch_calls(monkeypatch, module: Any, name: str, die_at: int | None = None, signal: int | None = None) -> dict:
    """Wrap ``module.name`` to count its calls in ``["n"]``; with ``die_at``, that call raises
    ``KeyboardInterrupt`` instead, as a kill at that point would, or, with ``signal``, sends that signal to
    this process and goes on (as ``kill PID`` would).  ``["real"]`` is the original."""
    real = getattr(module, name)
    calls = {"n": 0, "real": real}

    def wrapped(*a, **k):
        calls["n"] += 1
        if calls["n"] == die_at:
            if signal is None:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal)
        return real(*a, **k)

    monkeypatch.setattr(module, name, wrapped)
    return calls
