"""The embedded local stack: Apache Kafka (KRaft) and PostgreSQL under the state dir.

* Kafka: the jars of a pinned Apache Kafka release are resolved from Maven
  Central by ``deploy/pom.xml`` into a cache outside the repository
  (``~/.cache/finsent/kafka-<version>/libs``), the storage is formatted once in
  KRaft mode, and ``kafka.Kafka`` runs as a single combined broker+controller
  bound to 127.0.0.1.
* PostgreSQL: the system's server binaries (Debian's ``postgresql`` package)
  ``initdb`` a private cluster in the state dir that listens only on 127.0.0.1.

Every process is started by us, recorded by PID in the state dir, and stopped
by that PID only.  Servers named by ``FINSENT_KAFKA`` / ``FINSENT_DATABASE_URL``
are used as they are and never started or stopped.
"""

from __future__ import annotations

import base64
import glob
import grp
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2

from storage import migrate as migrations
from stream.base.config import machine_settings
from stream.base.errors import UserError
from stream.base.redact import redact

if TYPE_CHECKING:  # pydantic: not for every command's start-up
    from stream.base.settings import Settings

log = logging.getLogger("finsent.stack")

DEPLOY_DIR = Path(__file__).resolve().parent
POM = DEPLOY_DIR / "pom.xml"
LOG4J = DEPLOY_DIR / "local" / "log4j2.properties"


# --------------------------------------------------------------------------- helpers
def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, flush=True)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cache_dir() -> Path:
    """``FINSENT_CACHE_DIR``, else ``$XDG_CACHE_HOME/finsent`` or ``~/.cache/finsent``."""
    return machine_settings().cache_dir


# --------------------------------------------------------------------------- Kafka
@dataclass
class KafkaPaths:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def pid(self) -> Path:
        return self.root / "kafka.pid"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def stdout(self) -> Path:
        return self.root / "stdout.log"


def kafka_libs(version: str) -> Path:
    return cache_dir() / f"kafka-{version}" / "libs"


def fetch_kafka(version: str, quiet: bool = False) -> Path:
    """Resolve the Kafka broker jars with Maven (cached; quick when present)."""
    libs = kafka_libs(version)
    marker = libs / ".complete"
    if marker.exists():
        return libs
    if not shutil.which("java"):
        raise UserError("Java is not installed: the Kafka broker needs a JRE 17+ (apt-get install openjdk-17-jre-headless)")
    if not shutil.which("mvn"):
        raise UserError("Maven is not installed: it fetches the Kafka jars (apt-get install maven)")
    _say(f"fetching Apache Kafka {version} jars from Maven Central into {libs} ...", quiet)
    libs.mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn", "-q", "-B", "-f", str(POM), f"-Dkafka.version={version}",
        "dependency:copy-dependencies", f"-DoutputDirectory={libs}",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0 or not glob.glob(str(libs / f"kafka_2.13-{version}.jar")):
        raise UserError(f"Maven could not fetch Kafka {version}:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    marker.write_text(version)
    return libs


def _kafka_properties(settings: Settings, paths: KafkaPaths) -> str:
    s = settings.stack
    return "\n".join([
        "# written by finsent up: single-node KRaft (combined broker + controller) on loopback",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{s.controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={paths.data}",
        f"num.partitions={settings.partitions}",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=8",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        "delete.topic.enable=true",
        "log.retention.hours=-1",
        "message.max.bytes=4194304",
        "",
    ])


def _java_cmd(libs: Path, paths: KafkaPaths, main: str, *args: str) -> list[str]:
    return [
        "java", *machine_settings().kafka_heap.split(), "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J}", f"-Dfinsent.kafka.logdir={paths.root}",
        "-cp", f"{libs}/*", main, *args,
    ]


def kafka_pid(settings: Settings) -> int | None:
    paths = KafkaPaths(settings.state_dir / "kafka")
    pid = _read_pid(paths.pid)
    if pid and pid_alive(pid) and "kafka.Kafka" in _cmdline(pid):
        return pid
    return None


def kafka_ready(bootstrap: str, timeout: float = 3.0) -> dict | None:
    """Cluster facts if a Kafka broker answers metadata requests, else None."""
    from kafka.admin import KafkaAdminClient  # here: kafka-python, ~0.12 s of every command's start-up

    hosts = [h.strip().rsplit(":", 1) for h in bootstrap.split(",") if h.strip()]
    if not any(port_open(int(p), host.strip("[]"), timeout=min(timeout, 1.0)) for host, p in hosts):
        return None  # fail fast (and quietly) when nothing listens
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="finsent-status",
            request_timeout_ms=int(timeout * 1000),
        )
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return None
    try:
        info = admin.describe_cluster()
        return {"cluster_id": info.get("cluster_id"), "controller_id": info.get("controller_id"),
                "brokers": len(info.get("brokers", []))}
    except Exception:  # noqa: BLE001 - any failure: the broker's details are shown as unknown
        return None
    finally:
        admin.close()


# The broker outlives the call that starts it (and the command or test session that called it).  Its Popen
# object is kept here: dropped while the broker runs, the interpreter warns "subprocess N is still running"
# (ResourceWarning), which under pytest's filterwarnings = error failed whichever test was running when
# the object was collected -- the first test of a session that starts the stack, as CI's does.
_SERVERS: dict[int, subprocess.Popen[bytes]] = {}


def start_kafka(settings: Settings, quiet: bool = False, timeout: float = 90.0) -> None:
    s = settings.stack
    paths = KafkaPaths(settings.state_dir / "kafka")
    paths.root.mkdir(parents=True, exist_ok=True)
    if kafka_pid(settings):
        _say(f"kafka: already running (pid {kafka_pid(settings)}) at 127.0.0.1:{s.kafka_port}", quiet)
        return
    if paths.pid.exists():
        _say(f"kafka: removing stale pid file {paths.pid} (process {_read_pid(paths.pid)} is gone)", quiet)
        paths.pid.unlink()
    for port in (s.kafka_port, s.controller_port):
        if port_open(port):
            raise UserError(
                f"port 127.0.0.1:{port} is taken by another process; stop it or choose other ports "
                "(FINSENT_STACK_KAFKA_PORT / FINSENT_STACK_CONTROLLER_PORT)"
            )
    libs = fetch_kafka(s.kafka_version, quiet)
    paths.config.write_text(_kafka_properties(settings, paths))
    if not (paths.data / "meta.properties").exists():
        paths.data.mkdir(parents=True, exist_ok=True)
        cluster_id = _kafka_cluster_id()
        res = subprocess.run(
            _java_cmd(libs, paths, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                      "-c", str(paths.config), "--ignore-formatted"),
            capture_output=True, text=True,
        )
        if res.returncode != 0:
            raise UserError(f"kafka storage format failed: {res.stdout[-1500:]}{res.stderr[-1500:]}")
    _say(f"kafka: starting Apache Kafka {s.kafka_version} (KRaft) on 127.0.0.1:{s.kafka_port} ...", quiet)
    with open(paths.stdout, "ab") as out:
        proc = subprocess.Popen(
            _java_cmd(libs, paths, "kafka.Kafka", str(paths.config)),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=paths.root,
        )
    _SERVERS[proc.pid] = proc
    paths.pid.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    bootstrap = f"127.0.0.1:{s.kafka_port}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            paths.pid.unlink(missing_ok=True)
            raise UserError(f"kafka exited at start-up (code {proc.returncode}); see {paths.stdout} and {paths.log}")
        if port_open(s.kafka_port) and kafka_ready(bootstrap):
            _say(f"kafka: ready (pid {proc.pid})", quiet)
            return
        time.sleep(0.5)
    raise UserError(f"kafka did not become ready within {timeout:.0f}s; see {paths.log}")


def _kafka_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def stop_pid(pid: int, name: str, timeout: float = 30.0, quiet: bool = False) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = _SERVERS.get(pid)
        if proc is not None and proc.poll() is not None:  # our child: reaped, so no zombie looks alive
            del _SERVERS[pid]
            return
        if not pid_alive(pid):
            return
        time.sleep(0.2)
    _say(f"{name}: did not stop within {timeout:.0f}s, killing pid {pid}", quiet)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc = _SERVERS.pop(pid, None)
    if proc is not None:
        proc.wait(timeout=10)


def stop_kafka(settings: Settings, quiet: bool = False) -> None:
    paths = KafkaPaths(settings.state_dir / "kafka")
    pid = kafka_pid(settings)
    if pid is None:
        if paths.pid.exists():
            paths.pid.unlink()
        _say("kafka: not running", quiet)
        return
    _say(f"kafka: stopping pid {pid} ...", quiet)
    stop_pid(pid, "kafka", quiet=quiet)
    paths.pid.unlink(missing_ok=True)
    _say("kafka: stopped", quiet)


# --------------------------------------------------------------------------- PostgreSQL
def pg_bindir() -> Path:
    """Directory of the system's PostgreSQL server binaries (highest version)."""
    given = machine_settings().pg_bindir  # FINSENT_PG_BINDIR
    candidates = [given] if given else []
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True,
    )
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            candidates.append(Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip()))
        except (OSError, subprocess.CalledProcessError):
            pass
    for c in candidates:
        if (c / "initdb").exists() and (c / "postgres").exists():
            return c
    raise UserError(
        "PostgreSQL server binaries not found (initdb, postgres): install Debian's package "
        "with 'apt-get install postgresql' (make setup does this as root), or set "
        "FINSENT_DATABASE_URL to use an existing server"
    )


def _pg_run_as() -> str | None:
    """initdb and postgres refuse to run as root: run them as the 'postgres' user then."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise UserError("running as root but there is no 'postgres' system user to run the database server; "
                        "install Debian's postgresql package (it creates the user)") from None
    return "postgres"


def _as_user(user: str | None, cmd: list[str]) -> list[str]:
    if user is None:
        return cmd
    return ["runuser", "-u", user, "--", *cmd]


def _chown_tree(path: Path, user: str | None) -> None:
    if user is None:
        return
    pw = pwd.getpwnam(user)
    for root, _dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for f in files:
            os.chown(os.path.join(root, f), pw.pw_uid, pw.pw_gid)


def _can_traverse(path: Path, user: str) -> bool:
    """Whether ``user`` can reach ``path``: search (x) permission on every existing ancestor."""
    pw = pwd.getpwnam(user)
    groups = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    p = Path(os.path.abspath(path))
    for d in [p, *p.parents]:
        try:
            st = os.stat(d)
        except FileNotFoundError:
            continue
        if st.st_uid == pw.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


PG_LOCATION_FILE = "postgres.location"  # in the state dir: where the cluster lives when not under it


def pg_root(settings: Settings) -> Path:
    """The directory of the local PostgreSQL cluster (data, socket, log).

    Normally ``<state dir>/postgres``.  When the server must run as another user (root runs it
    as ``postgres``) and that user cannot enter the state dir (a checkout under ``/root``, a
    ``mktemp -d`` folder, mode 0700), the cluster lives instead in a directory that user owns,
    ``<home of postgres>/finsent/<state-dir-name>-<hash>/postgres`` (override the base with
    ``FINSENT_PG_HOME``), and ``<state dir>/postgres.location`` records where.  No permission of
    the user's directories is changed.
    """
    local = settings.state_dir / "postgres"
    pointer = settings.state_dir / PG_LOCATION_FILE
    try:
        recorded = pointer.read_text().strip()
    except OSError:
        recorded = ""
    if recorded:
        return Path(recorded)
    user = _pg_run_as()
    if user is None or (local / "data" / "PG_VERSION").exists() or _can_traverse(settings.state_dir, user):
        return local

    state = settings.state_dir.resolve()
    base = machine_settings().pg_home or Path(pwd.getpwnam(user).pw_dir) / "finsent"  # FINSENT_PG_HOME
    return base / f"{state.name}-{hashlib.sha256(str(state).encode()).hexdigest()[:12]}" / "postgres"


def pg_pid(settings: Settings) -> int | None:
    pid = _read_pid(pg_root(settings) / "data" / "postmaster.pid")
    if pid and pid_alive(pid) and "postgres" in _cmdline(pid):
        return pid
    return None


def pg_ready(dsn: str, timeout: float = 3.0) -> str | None:
    """The server version if PostgreSQL accepts a connection, else None."""

    try:
        conn = psycopg2.connect(dsn, connect_timeout=max(1, int(timeout)))
    except psycopg2.Error:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            return cur.fetchone()[0]
    finally:
        conn.close()


def start_postgres(settings: Settings, quiet: bool = False, timeout: float = 60.0) -> None:
    s = settings.stack
    root = pg_root(settings)
    data = root / "data"
    sock = root / "run"
    if pg_pid(settings):
        _say(f"postgres: already running (pid {pg_pid(settings)}) at 127.0.0.1:{s.postgres_port}", quiet)
        return
    stale = data / "postmaster.pid"
    if stale.exists():
        _say(f"postgres: removing stale pid file {stale} (process {_read_pid(stale)} is gone)", quiet)
        stale.unlink()
    if port_open(s.postgres_port):
        raise UserError(
            f"port 127.0.0.1:{s.postgres_port} is taken by another process; stop it or choose "
            "another port (FINSENT_STACK_POSTGRES_PORT)"
        )
    bindir = pg_bindir()
    user = _pg_run_as()
    if root != settings.state_dir / "postgres":
        _say(f"postgres: user {user} cannot enter {settings.state_dir}: the cluster lives in {root} "
             f"(recorded in {settings.state_dir / PG_LOCATION_FILE})", quiet)
        if user is not None and not root.parent.exists():
            root.parent.mkdir(parents=True, mode=0o700)
            shutil.chown(root.parent, user, user)
        (settings.state_dir / PG_LOCATION_FILE).write_text(f"{root}\n")
    root.mkdir(parents=True, exist_ok=True)
    sock.mkdir(exist_ok=True)
    if not (data / "PG_VERSION").exists():
        _say(f"postgres: initdb {data} ...", quiet)
        data.mkdir(parents=True, exist_ok=True)
        pwfile = root / ".pwfile"
        pwfile.write_text(s.postgres_password.get_secret_value() + "\n")
        _chown_tree(root, user)
        os.chmod(pwfile, 0o600)
        res = subprocess.run(
            _as_user(user, [str(bindir / "initdb"), "-D", str(data), "-U", s.postgres_user,
                            f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=peer",
                            "-E", "UTF8", "--locale=C.UTF-8"]),
            capture_output=True, text=True,
        )
        pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            raise UserError(f"initdb failed: {res.stderr[-2000:]}")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# finsent local stack\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {s.postgres_port}\n"
                f"unix_socket_directories = '{sock}'\n"
                "max_connections = 200\n"
                "shared_buffers = 256MB\n"
                "timezone = 'UTC'\n"
                "log_timezone = 'UTC'\n"
            )
    _chown_tree(root, user)
    _say(f"postgres: starting on 127.0.0.1:{s.postgres_port} ...", quiet)
    res = subprocess.run(
        _as_user(user, [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "postgres.log"),
                        "-w", "-t", str(int(timeout)), "start"]),
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if res.returncode != 0:
        raise UserError(f"postgres did not start: {res.stdout[-1000:]}{res.stderr[-1000:]}; see {root / 'postgres.log'}")
    admin_dsn = settings.dsn.rsplit("/", 1)[0] + "/postgres"
    deadline = time.monotonic() + timeout
    while not pg_ready(admin_dsn):
        if time.monotonic() > deadline:
            raise UserError(f"postgres did not accept connections within {timeout:.0f}s")
        time.sleep(0.3)
    _ensure_database(admin_dsn, s.postgres_db)
    _say(f"postgres: ready (pid {pg_pid(settings)})", quiet)


def _ensure_database(admin_dsn: str, name: str) -> None:
    conn = psycopg2.connect(admin_dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def stop_postgres(settings: Settings, quiet: bool = False) -> None:
    pid = pg_pid(settings)
    if pid is None:
        _say("postgres: not running", quiet)
        return
    _say(f"postgres: stopping pid {pid} ...", quiet)
    data = pg_root(settings) / "data"
    try:
        bindir = pg_bindir()
        subprocess.run(
            _as_user(_pg_run_as(), [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True, text=True, timeout=60,
        )
    except (UserError, subprocess.TimeoutExpired):
        pass
    if pid_alive(pid):
        stop_pid(pid, "postgres", quiet=quiet)
    _say("postgres: stopped", quiet)


# --------------------------------------------------------------------------- the stack
def migrate(settings: Settings, quiet: bool = False) -> None:
    if importlib.util.find_spec("storage.migrate") is None:  # storage not built yet
        return

    version = migrations.upgrade_to_settings(settings)
    _say(f"database: schema '{settings.schema}' at migration version {version}", quiet)


def up(settings: Settings, quiet: bool = False) -> None:
    """Start whatever is not running (idempotent), wait until ready, migrate."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if settings.uses_local_kafka:
        start_kafka(settings, quiet)
    elif not kafka_ready(settings.kafka_bootstrap):
        raise UserError(f"Kafka at {settings.kafka_bootstrap} (FINSENT_KAFKA) does not answer")
    if settings.uses_local_postgres:
        start_postgres(settings, quiet)
    elif not pg_ready(settings.dsn):
        raise UserError(f"PostgreSQL at {redact(settings.dsn)} (FINSENT_DATABASE_URL) does not answer")
    migrate(settings, quiet)


def down(settings: Settings, quiet: bool = False) -> None:
    if settings.uses_local_kafka:
        stop_kafka(settings, quiet)
    else:
        _say("kafka: external (FINSENT_KAFKA), left alone", quiet)
    if settings.uses_local_postgres:
        stop_postgres(settings, quiet)
    else:
        _say("postgres: external (FINSENT_DATABASE_URL), left alone", quiet)


def status(settings: Settings) -> dict:
    bootstrap = settings.kafka_bootstrap
    k = kafka_ready(bootstrap)
    v = pg_ready(settings.dsn)
    return {
        "kafka": bootstrap,
        "database_url": redact(settings.dsn),
        "kafka_ok": k is not None,
        "postgres_ok": v is not None,
        "kafka_version": settings.stack.kafka_version if settings.uses_local_kafka else None,
        "kafka_mode": "KRaft" if settings.uses_local_kafka else None,
        "kafka_cluster_id": (k or {}).get("cluster_id"),
        "kafka_pid": kafka_pid(settings) if settings.uses_local_kafka else None,
        "postgres_version": v,
        "postgres_pid": pg_pid(settings) if settings.uses_local_postgres else None,
        "postgres_dir": str(pg_root(settings)) if settings.uses_local_postgres else None,
        "state_dir": str(settings.state_dir.resolve()),
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use 'finsent up|down|status'")
