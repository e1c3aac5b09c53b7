"""The production examples in deploy/production: what can be checked without a container engine.

No container engine runs on the development machines, so the compose file and
the Dockerfile are checked structurally (YAML loads, KRaft quorum consistent,
GPU reservation, setting names real, the install uses the same pins as
``make setup``); the systemd unit is parsed and, where ``systemd-analyze`` is
installed, verified (skipped otherwise).
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stream.base.config import load_settings, settings_env_keys
from tests.conftest import REPO

yaml = pytest.importorskip("yaml")  # PyYAML: pinned in deploy/constraints.txt (via transformers)

PROD = REPO / "deploy" / "production"
COMPOSE = PROD / "compose.yaml"
DOCKERFILE = PROD / "Dockerfile"
UNIT = PROD / "finsent-worker.service"
ENV_EXAMPLE = PROD / "finsent-worker.env.example"


# --------------------------------------------------------------------------- helpers
def setting_env_names() -> set[str]:
    """Every environment name stream.base.config reads: FINSENT_<FIELD>, FINSENT_ALERTS_/STACK_<FIELD>, FINSENT_CONFIG."""
    return {"FINSENT_CONFIG"} | set(settings_env_keys())


_INTERP = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def interpolate(value) -> str:
    """Compose-style ${VAR:-default} / ${VAR:?msg} / ${VAR} with nothing set: default, else a placeholder."""
    def sub(m):
        if m.group(0).startswith("${" + m.group(1) + ":-") or m.group(0).startswith("${" + m.group(1) + "-"):
            return m.group(2) or ""
        return "placeholder"

    return _INTERP.sub(sub, str(value))


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def listeners(text: str) -> dict[str, tuple[str, int]]:
    out = {}
    for item in text.split(","):
        name, rest = item.strip().split("://", 1)
        host, port = rest.rsplit(":", 1)
        out[name] = (host, int(port))
    return out


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def kafka_nodes(compose) -> dict[str, dict[str, str]]:
    return {name: env_of(svc) for name, svc in compose["services"].items()
            if str(svc.get("image", "")).startswith("apache/kafka")}


# --------------------------------------------------------------------------- compose: Kafka
def test_compose_has_three_kraft_nodes_with_unique_ids(kafka_nodes):
    assert len(kafka_nodes) == 3, sorted(kafka_nodes)
    ids = [int(env["KAFKA_NODE_ID"]) for env in kafka_nodes.values()]
    assert len(set(ids)) == 3
    assert len({env["CLUSTER_ID"] for env in kafka_nodes.values()}) == 1
    for name, env in kafka_nodes.items():
        roles = set(env["KAFKA_PROCESS_ROLES"].split(","))
        assert "broker" in roles and roles <= {"broker", "controller"}, name
        assert "ZOOKEEPER" not in " ".join(env).upper()


def test_compose_controller_quorum_is_consistent(kafka_nodes):
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in kafka_nodes.values()}
    assert len(voters) == 1, "every node must name the same quorum"
    quorum = {}
    for v in voters.pop().split(","):
        node_id, hostport = v.split("@")
        host, port = hostport.rsplit(":", 1)
        quorum[int(node_id)] = (host, int(port))
    controllers = {int(env["KAFKA_NODE_ID"]): (name, env) for name, env in kafka_nodes.items()
                   if "controller" in env["KAFKA_PROCESS_ROLES"]}
    assert len(controllers) % 2 == 1 and set(quorum) == set(controllers)
    for node_id, (name, env) in controllers.items():
        ctl_names = env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")
        ls = listeners(env["KAFKA_LISTENERS"])
        assert ls[ctl_names[0]] == quorum[node_id], f"{name}: controller listener is not its quorum address"


def test_compose_kafka_listeners_are_explicit(compose, kafka_nodes):
    for name, env in kafka_nodes.items():
        ls = listeners(env["KAFKA_LISTENERS"])
        adv = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
        protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert set(ls) <= set(protocols) and set(adv) <= set(ls)
        assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in adv
        assert not set(env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")) & set(adv)
        for lname, (host, _port) in ls.items():
            assert host not in ("", "0.0.0.0", "::"), f"{name} {lname} binds every interface"
        assert adv[env["KAFKA_INTER_BROKER_LISTENER_NAME"]][0] == compose["services"][name].get("hostname", name)
        rf = int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"])
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) < rf <= len(kafka_nodes)
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) <= len(kafka_nodes)


def test_compose_publishes_ports_on_loopback_only(compose):
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    for path in PROD.iterdir():
        if path.is_file():
            assert "0.0.0.0" not in path.read_text(encoding="utf-8"), path.name


# --------------------------------------------------------------------------- compose: workers
def test_compose_worker_gpu_reservation_and_replicas(compose):
    worker = compose["services"]["worker"]
    assert worker["command"] == ["finsent", "worker"]
    replicas = interpolate(worker["deploy"]["replicas"])
    assert int(replicas) >= 1
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    build = worker["build"]
    dockerfile = (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve()
    assert dockerfile == DOCKERFILE.resolve()


def test_compose_env_names_are_real_settings(compose):
    valid = setting_env_names()
    worker_env = env_of(compose["services"]["worker"])
    for required in ("FINSENT_KAFKA", "FINSENT_DATABASE_URL", "FINSENT_ALERT_URLS", "FINSENT_PARTITIONS"):
        assert required in worker_env
    for name, svc in compose["services"].items():
        unknown = {k for k in env_of(svc) if k.startswith("FINSENT_")} - valid
        assert not unknown, f"{name}: not settings in stream/base/config.py: {sorted(unknown)}"
    # the values coerce to the settings' types
    s = load_settings(env={k: interpolate(v) for k, v in worker_env.items()}, config_file=None)
    assert s.kafka == "kafka1:9092,kafka2:9092,kafka3:9092" and s.partitions >= 1 and s.replication == 3
    assert s.dsn.startswith("postgresql://") and "@postgres:5432/" in s.dsn


def test_compose_worker_bootstrap_names_real_listeners(compose, kafka_nodes):
    worker_env = env_of(compose["services"]["worker"])
    plaintext = {listeners(env["KAFKA_LISTENERS"])["PLAINTEXT"] for env in kafka_nodes.values()}
    for server in worker_env["FINSENT_KAFKA"].split(","):
        host, port = server.rsplit(":", 1)
        assert (host, int(port)) in plaintext
    assert set(compose["services"]["worker"]["depends_on"]) >= set(kafka_nodes) | {"postgres", "migrate"}


# --------------------------------------------------------------------------- Dockerfile
def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def test_dockerfile_base_is_cuda_runtime():
    ins = _dockerfile_instructions()
    args = {}
    for word, rest in ins:
        if word == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            args.setdefault(k, v)
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest.split()[0]) for w, rest in ins if w == "FROM"]
    assert bases
    for base in bases:
        image, _, tag = base.partition(":")
        assert image == "nvidia/cuda" and "runtime" in tag, base


def test_dockerfile_installs_with_make_setup_constraints():
    make = (REPO / "Makefile").read_text(encoding="utf-8")
    setup_pins = re.findall(r"pip install[^\n]*?-c\s+(\S+)", make)
    assert setup_pins, "make setup does not install with a constraints file"
    runs = " ".join(rest for w, rest in _dockerfile_instructions() if w == "RUN")
    docker_pins = re.findall(r"pip install[^&;|]*?-c\s+(\S+)\s+\.", runs)
    assert docker_pins and set(docker_pins) == set(setup_pins)
    assert (REPO / docker_pins[0]).is_file()


def test_dockerfile_bakes_checkpoint_runs_offline_non_root():
    ins = _dockerfile_instructions()
    copies = [rest for w, rest in ins if w == "COPY" and rest.startswith("model/checkpoint")]
    assert copies, "the checkpoint is not copied into the image"
    dest = copies[0].split()[-1].rstrip("/")
    env = " ".join(rest for w, rest in ins if w == "ENV")
    assert "HF_HUB_OFFLINE=1" in env and f"FINSENT_MODEL={dest}" in env
    users = [rest for w, rest in ins if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(w == "HEALTHCHECK" for w, _ in ins)
    cmd = [rest for w, rest in ins if w == "CMD"][-1]
    assert json.loads(cmd) == ["finsent", "worker"]
    ignore = (PROD / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert not any(p.strip("/") in ("model", "model/checkpoint", "deploy", "deploy/constraints.txt") for p in ignore)


def test_example_commands_exist_in_the_cli(compose):
    from stream.cli import build_parser

    parser = build_parser()
    commands = [["worker"], ["db", "upgrade"]]
    for svc in compose["services"].values():
        cmd = svc.get("command")
        if isinstance(cmd, list) and cmd[0] == "finsent":
            commands.append(cmd[1:])
    for argv in commands:
        assert getattr(parser.parse_args(argv), "func", None), argv


# --------------------------------------------------------------------------- systemd
def _unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None, empty_lines_in_values=False)
    cp.optionxform = str  # systemd keys are case-sensitive
    cp.read_string(UNIT.read_text(encoding="utf-8"))
    return cp


def test_systemd_unit_parses_with_expected_settings():
    u = _unit()
    assert set(u.sections()) == {"Unit", "Service", "Install"}
    svc = u["Service"]
    argv = svc["ExecStart"].split()
    assert Path(argv[0]).is_absolute() and Path(argv[0]).name == "finsent" and argv[1:] == ["worker"]
    assert svc["Restart"] == "on-failure" and svc["KillSignal"] == "SIGTERM"
    assert svc["TimeoutStopSec"] and svc["EnvironmentFile"].lstrip("-").startswith("/etc/")
    assert svc["User"] not in ("root", "0")
    assert svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert "HF_HUB_OFFLINE=1" in svc["Environment"]
    assert u["Install"]["WantedBy"] == "multi-user.target"


def test_env_example_names_are_real_settings():
    env = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v
    assert not set(env) - setting_env_names()
    s = load_settings(env=env, config_file=None)
    assert s.kafka and s.database_url and s.alert_urls and s.partitions == 12


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed: the unit was only parsed")
    # verify checks that ExecStart exists: point it at this checkout's finsent (or any executable)
    finsent = shutil.which("finsent") or "/bin/true"
    text = re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={finsent}", UNIT.read_text(encoding="utf-8"))
    unit = tmp_path / UNIT.name
    unit.write_text(text, encoding="utf-8")
    res = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [ln for ln in (res.stdout + res.stderr).splitlines() if UNIT.name in ln]
    assert res.returncode == 0 and not complaints, res.stdout + res.stderr


def test_compose_env_example_covers_the_required_variables():
    example = {}
    for line in (PROD / "compose.env.example").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, v = line.split("=", 1)
            example[k] = v
    assert not {k for k in example if k.startswith("FINSENT_")} - setting_env_names()
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text(encoding="utf-8")))
    required = set(re.findall(r"\$\{(\w+)(?::\?|\})", COMPOSE.read_text(encoding="utf-8")))
    assert required <= set(example), sorted(required - set(example))
    assert set(example) <= used, sorted(set(example) - used)
