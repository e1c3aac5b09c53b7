"""Where the cores go: CPU seconds of a process (with its children), of the servers, of the machine.

Shared by the benchmarks (``bench/pipeline.py``, ``bench/replay.py``): the servers are found by the
port they listen on (``/proc/net/tcp``), so a stack started from another checkout is measured too.
"""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()


def cpu_seconds(pid: int | None, *, reaped: bool = True) -> float:
    """User + system CPU seconds of a process so far (all its threads); ``reaped``: plus those of its
    children that exited and were waited for (PostgreSQL's finished backends, a pool's processes).
    0 when the process is gone."""
    if not pid:
        return 0.0
    try:
        f = _stat(pid)
    except (OSError, IndexError):
        return 0.0
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if reaped else 0)
    return ticks / TICK


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int(_stat(int(d.name))[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def tree_cpu_seconds(pid: int | None) -> float:
    """A process, its reaped children and its live descendants: a server's whole CPU so far."""
    if not pid:
        return 0.0
    return cpu_seconds(pid) + sum(tree_cpu_seconds(c) for c in children(pid))


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat: every core, idle and iowait excluded)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK


def listening_pid(port: int) -> int | None:
    """The process listening on TCP ``port`` (IPv4 or IPv6), from /proc; None when not found."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(cols[9])
    if not inodes:
        return None
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            for fd in (d / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    found.append(int(d.name))
                    break
        except OSError:
            continue
    return min(found) if found else None  # the parent (postmaster) before any forked child


def servers(settings) -> dict[str, int | None]:
    """PIDs of the PostgreSQL postmaster and the Kafka broker of ``settings``."""
    from psycopg2.extensions import parse_dsn  # both DSN forms; also with an older checkout's code (--root)

    pg_port = int(parse_dsn(settings.dsn).get("port") or 5432)
    kafka_port = int(settings.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])
    return {"PostgreSQL": listening_pid(pg_port), "Kafka": listening_pid(kafka_port)}


class CpuMeter:
    """CPU seconds of named processes between :meth:`start` and :meth:`stop`, per 1,000 items."""

    def __init__(self, settings, **pids: int | None) -> None:
        self.pids = {**pids, **servers(settings)}
        self.before: dict[str, float] = {}

    def sample(self) -> dict[str, float]:
        out = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}
        out["machine"] = machine_cpu_seconds()
        return out

    def start(self) -> None:
        self.before = self.sample()

    def per_1000(self, items: int, wall_s: float, extra: dict[str, float] | None = None) -> dict[str, float]:
        """ms of CPU per 1,000 items of each process since :meth:`start` (``extra``: CPU seconds of processes
        measured otherwise, e.g. an exited child's rusage), 'other' = the rest of the machine, and how many
        cores the machine kept busy."""
        after = self.sample()
        d = {k: after[k] - self.before[k] for k in after}
        d.update(extra or {})
        out = {k: 1e6 * v / items for k, v in d.items() if k != "machine"}
        out["other"] = max(0.0, 1e6 * (d["machine"] - sum(v for k, v in d.items() if k != "machine")) / items)
        out["machine busy, cores"] = d["machine"] / wall_s
        return out


def describe_split(split: dict[str, float]) -> str:
    parts = ", ".join(f"{k} {v:,.0f} ms" for k, v in split.items() if k != "machine busy, cores")
    return f"CPU per 1,000 items: {parts}; machine busy {split['machine busy, cores']:.2f} of {os.cpu_count()} cores"
