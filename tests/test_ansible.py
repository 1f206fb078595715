"""The playbook applied for real: `ansible/site.yml` onto a fresh Debian root (debootstrap, reached with Ansible's
chroot connection), twice, the second run changing nothing; the rendered units verified by systemd; then the deployed
Mosquitto, InfluxDB, hub, web and agent started from those units' own command lines, users and configs, and a point
followed from the agent to the web API.

No systemd runs in a chroot, so the test is the service manager: it runs each unit's ExecStartPre/ExecStart as its
User, with the notify socket systemd would give, and reads READY=1 from each powerhub service. The role variable
`powerhub_manage_services: false` (an image build) is what keeps the roles from starting services themselves; the
database tasks, which need a running InfluxDB, are applied once it runs (`--tags influxdb_database`).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from hub.alerts import AlertsConfig
from telemetry.config import MqttConfig, Section
from telemetry.mqtt import connect_async, make_client
from tests.peers import free_port, wait_for, wait_port
from tests.test_security import Pki

pytestmark = [pytest.mark.peers, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "ansible" / "site.yml"
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^target\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def host_debian() -> tuple[str, str]:
    """The suite and mirror this machine's own apt uses: the fresh root is the same Debian, from the same place."""
    release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    suite = release["VERSION_CODENAME"].strip('"')
    for sources in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in sources.read_text().split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and line[0] != "#")
            if suite in fields.get("Suites", "").split():
                return suite, fields["URIs"].split()[0]
    for line in Path("/etc/apt/sources.list").read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["deb"] and suite in parts:
            return suite, next(p for p in parts[1:] if "://" in p)
    raise RuntimeError("no Debian mirror for this machine's suite in its apt sources")


def processes_in(root: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "root") == str(root):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def mounts_under(root: Path) -> list[str]:
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(root) + "/")]


@pytest.fixture(scope="module")
def fresh_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A Debian of this machine's release: minbase plus python3 and systemd, which any installed Debian has."""
    root = tmp_path_factory.mktemp("deploy") / "root"
    suite, mirror = host_debian()
    subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,systemd", suite, str(root), mirror],
                   check=True, capture_output=True, timeout=900)
    # As when building an image: packages' maintainer scripts must not start their daemons in the chroot.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        yield root
    finally:
        for pid in processes_in(root):
            os.kill(pid, signal.SIGKILL)
        subprocess.run(["umount", "--lazy", str(root / "proc")], check=False)
        if mounts_under(root):
            raise RuntimeError(f"still mounted under {root}: {mounts_under(root)}; not removing it")
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)


@dataclass
class Deployment:
    root: Path
    inventory: Path
    ports: dict[str, int]
    pki: Pki


def write_inventory(root: Path, path: Path, ports: dict[str, int], pki: Pki) -> None:
    mqtt = f"mqtt://127.0.0.1:{ports['mqtt']}"
    store = f"influxdb://127.0.0.1:{ports['influx']}/powerhub"
    hosts_vars: dict[str, Any] = {
        "powerhub_manage_services": False,
        "powerhub_pip_offline": True,
        "mosquitto_port": ports["mqtt"],
        "mosquitto_tls_port": ports["mqtts"],
        "mosquitto_tls_cert_file": str(pki.d / "server.pem"),
        "mosquitto_tls_key_file": str(pki.d / "server.key"),
        "mosquitto_tls_ca_file": str(pki.d / "ca.pem"),
        "mosquitto_hub_password": "hub-secret",
        "influxdb_http_bind": f"127.0.0.1:{ports['influx']}",
        "influxdb_rpc_bind": f"127.0.0.1:{ports['influx_rpc']}",
        "influxdb_retention_days": 400,
        "hub_mqtt_url": mqtt, "hub_mqtt_password": "hub-secret", "hub_store_url": store,
        "hub_listen": f"127.0.0.1:{ports['hub']}",
        "hub_alertmanager_url": f"http://127.0.0.1:{ports['alertmanager']}",  # none answers: retried, never lost
        "hub_alert_rules": [{"name": "outlet-hot", "series": "lab.pdu-*.outlet-*", "above": 500.0, "for_s": 30}],
        "web_listen": f"127.0.0.1:{ports['web']}", "web_hub_url": f"http://127.0.0.1:{ports['hub']}",
        "web_store_url": store, "web_mqtt_url": mqtt, "web_mqtt_password": "hub-secret",
        "edge_agent_site": "lab", "edge_agent_name": "pi", "edge_agent_mqtt_url": mqtt,
        "edge_agent_mqtt_password": "agent-secret",
        "edge_agent_arduino": {"vendor": "2341", "product": "0043", "serial": "95735353032351F0D1B1"},
        "edge_agent_secrets": {"bmc.pass": "bmc-secret"},
        "edge_agent_readers": [
            {"kind": "simulated", "device": "house", "mode": "watts", "interval_s": 0.5},
            # No BMC answers there: it only shows a reader's nested tables and secret file deployed and accepted.
            {"kind": "ipmi_dcmi", "interval_s": 30, "hosts": [
                {"device": "node17", "host": "127.0.0.1", "port": ports["ipmi"], "username": "admin",
                 "password_file": "/etc/powerhub/secrets/agent/bmc.pass"}]},
        ],
    }
    groups = {g: {"hosts": {"target": None}} for g in ("brokers", "influxdb", "hubs", "webs", "edge_agents")}
    inventory = {"all": {
        "hosts": {"target": {"ansible_connection": "community.general.chroot", "ansible_host": str(root),
                             "ansible_python_interpreter": "/usr/bin/python3"}},
        "children": groups, "vars": hosts_vars}}
    path.mkdir(parents=True, exist_ok=True)
    (path / "hosts.yml").write_text(json.dumps(inventory, indent=1))  # JSON is YAML


def play(inventory: Path, *extra: str) -> tuple[int, str]:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default", PATH=f"{BIN}:{os.environ['PATH']}",
               ANSIBLE_LOCAL_TEMP=str(inventory / "ansible-tmp"))
    argv = [str(BIN / "ansible-playbook"), "-i", str(inventory / "hosts.yml"), str(PLAYBOOK), *extra]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    recap = RECAP.search(out)
    assert recap, out[-3000:]
    assert recap.group(4) == "0" and recap.group(3) == "0", out[-6000:]
    return int(recap.group(2)), out


@pytest.fixture(scope="module")
def deployed(fresh_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    ports = {name: free_port() for name in ("mqtt", "mqtts", "influx", "influx_rpc", "hub", "web", "ipmi",
                                           "alertmanager")}
    inventory = tmp_path_factory.mktemp("inventory")
    pki = Pki(tmp_path_factory.mktemp("pki"))
    write_inventory(fresh_root, inventory, ports, pki)
    first, _ = play(inventory)
    assert first > 0
    return Deployment(fresh_root, inventory, ports, pki)


def test_second_run_changes_nothing(deployed: Deployment) -> None:
    changed, out = play(deployed.inventory)
    assert changed == 0, "\n".join(line for line in out.splitlines() if line.startswith(("TASK", "changed")))


UNITS = ("powerhub-hub", "powerhub-web", "powerhub-agent")


def test_rendered_units_pass_systemd_analyze_verify(deployed: Deployment) -> None:
    for unit in UNITS:
        proc = subprocess.run(["chroot", str(deployed.root), "systemd-analyze", "verify",
                               f"/etc/systemd/system/{unit}.service"], capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stderr.strip(), f"{unit}: {proc.stderr}"
        wanted = deployed.root / f"etc/systemd/system/multi-user.target.wants/{unit}.service"
        assert wanted.is_symlink(), f"{unit} is not enabled"
    agent = (deployed.root / "etc/systemd/system/powerhub-agent.service").read_text()
    for line in ("Type=notify", "WatchdogSec=60", "Restart=always", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "StateDirectory=powerhub-agent", "User=powerhub-agent", "SupplementaryGroups=dialout",
                 "DeviceAllow=/dev/arduino rw"):
        assert line in agent.splitlines(), line


def test_files_and_secrets_are_what_the_services_need(deployed: Deployment) -> None:
    etc = deployed.root / "etc"
    rule = (etc / "udev/rules.d/99-powerhub-arduino.rules").read_text()
    assert 'ATTRS{serial}=="95735353032351F0D1B1", SYMLINK+="arduino"' in rule
    users = {line.split(":")[0]: line.split(":") for line in (etc / "passwd").read_text().splitlines()}
    for name in ("hub", "web", "agent"):
        secret = etc / f"powerhub/secrets/{name}/mqtt.pass"
        assert secret.stat().st_mode & 0o777 == 0o600
        assert secret.stat().st_uid == int(users[f"powerhub-{name}"][2])
        assert users[f"powerhub-{name}"][6] == "/usr/sbin/nologin"
    assert (etc / "powerhub/secrets/agent/bmc.pass").read_text() == "bmc-secret"
    passwd = (etc / "mosquitto/powerhub/passwd").read_text()
    assert [line.split(":")[0] for line in passwd.splitlines()] == ["lab-pi", "hub"]
    assert "secret" not in passwd
    # The hub's [alerts] as the hub reads it (its secrets' paths are the target's, so only this section).
    alerts = AlertsConfig.parse(Section(tomllib.loads((etc / "powerhub/hub.toml").read_text()), ""))
    assert alerts.alertmanager_url == f"http://127.0.0.1:{deployed.ports['alertmanager']}"
    assert [(r.name, r.series, r.above, r.for_s) for r in alerts.rules] == [("outlet-hot", "lab.pdu-*.outlet-*",
                                                                             500.0, 30.0)]


@dataclass
class Unit:
    """What the test runs a systemd unit by: its [Service] command lines and user."""
    pre: list[list[str]]
    start: list[str]
    user: str | None
    workdir: str | None
    environment: dict[str, str]

    @staticmethod
    def read(path: Path) -> Unit:
        parser = configparser.RawConfigParser(strict=False, interpolation=None, allow_no_value=True)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        text = path.read_text()
        # Repeated keys (ExecStartPre=) are why this is not configparser's job alone.
        pre = [shlex.split(line.split("=", 1)[1].lstrip("-+!@")) for line in text.splitlines()
               if line.startswith("ExecStartPre=")]
        parser.read_string("\n".join(line for line in text.splitlines() if not line.startswith("ExecStartPre=")))
        service = parser["Service"]
        start = [word for word in shlex.split(service["ExecStart"]) if not word.startswith("$")]
        env = dict(item.split("=", 1) for item in shlex.split(service.get("Environment", "") or ""))
        return Unit(pre, start, service.get("User"), service.get("WorkingDirectory"), env)


class Services:
    """The deployed services, each started the way its unit says, inside the root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.sockets: dict[str, socket.socket] = {}

    def start(self, name: str, unit_path: str, notify: bool = False) -> None:
        unit = Unit.read(self.root / unit_path.lstrip("/"))
        for command in unit.pre:
            subprocess.run(["chroot", str(self.root), *command], check=True)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", **unit.environment}
        if notify:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(str(self.root / f"run/notify-{name}"))
            os.chmod(self.root / f"run/notify-{name}", 0o777)  # the service's own user sends to it
            sock.settimeout(60)
            self.sockets[name] = sock
            env.update(NOTIFY_SOCKET=f"/run/notify-{name}", WATCHDOG_USEC="60000000")
        user = ["--userspec", f"{unit.user}:{unit.user}"] if unit.user else []
        workdir = ["/usr/bin/env", "-C", unit.workdir] if unit.workdir else []
        log = open(self.root / f"run/{name}.log", "wb")  # noqa: SIM115 - the process holds it
        self.procs[name] = subprocess.Popen(["chroot", *user, str(self.root), *workdir, *unit.start], env=env,
                                            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def ready(self, name: str) -> str:
        return self.sockets[name].recv(4096).decode()

    def log(self, name: str) -> str:
        return (self.root / f"run/{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for name, proc in reversed(self.procs.items()):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            if name in self.sockets:
                self.sockets.pop(name).close()


@pytest.fixture(scope="module")
def running(deployed: Deployment) -> Iterator[tuple[Deployment, Services]]:
    services = Services(deployed.root)
    try:
        services.start("influxdb", "/lib/systemd/system/influxdb.service")
        services.start("mosquitto", "/lib/systemd/system/mosquitto.service")
        wait_port(deployed.ports["influx"], 60)
        wait_port(deployed.ports["mqtt"], 30)
        for name in ("hub", "web", "agent"):
            services.start(name, f"/etc/systemd/system/powerhub-{name}.service", notify=True)
        for name in ("hub", "web", "agent"):
            try:
                assert services.ready(name) == "READY=1"
            except TimeoutError:
                pytest.fail(f"powerhub-{name} did not say READY=1:\n{services.log(name)}")
        yield deployed, services
    finally:
        services.stop()


def test_a_point_goes_from_the_deployed_agent_to_the_web_api(running: tuple[Deployment, Services]) -> None:
    deployed, services = running
    web = f"http://127.0.0.1:{deployed.ports['web']}"

    def house() -> dict[str, Any] | None:
        series = requests.get(f"{web}/api/v1/series", timeout=10).json()
        return next((s for s in series if s["id"] == "lab.house.power" and s["online"]), None)

    try:
        found = wait_for(house, 60, "lab.house.power, online, in the deployed web app's series")
    except AssertionError:
        pytest.fail("\n".join(f"--- {n}\n{services.log(n)}" for n in ("agent", "hub", "web")))
    assert found["agent"] == "pi" and isinstance(found["gaps"], int)  # from the deployed hub's endpoint
    # The agent waits for a hub (edge_agent_wait_for_hub): the hub's marker got through the broker's ACL.
    assert "powerhub/hub/" in services.log("agent") and "a hub is subscribed" in services.log("agent")
    now_ms = int(time.time() * 1000)
    points = requests.get(f"{web}/api/v1/series/lab.house.power/points",
                          params={"from": now_ms - 600_000, "to": now_ms + 60_000}, timeout=10).json()
    assert points and all(watts > 0 for _ts, watts in points)
    for name in ("hub", "web", "agent"):
        assert services.procs[name].poll() is None, services.log(name)


def refused_over_tls(deployed: Deployment, password: str) -> bool:
    """Connect to the deployed broker's TLS listener as the hub: True if it refused the password."""
    cfg = MqttConfig.parse(Section({"url": f"mqtts://127.0.0.1:{deployed.ports['mqtts']}", "username": "hub",
                                    "password": password, "ca_file": str(deployed.pki.d / "ca.pem")}, "mqtt"))
    client = make_client(cfg, f"test-tls-{password}")
    answers: list[bool] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(bool(reason.is_failure))
    connect_async(client, cfg)
    try:
        wait_for(lambda: answers, 20, "the TLS listener to answer")
        return answers[0]
    finally:
        client.disconnect()
        client.loop_stop()


def test_deployed_broker_has_a_tls_listener_with_the_accounts(running: tuple[Deployment, Services]) -> None:
    deployed, _ = running
    assert not refused_over_tls(deployed, "hub-secret")
    assert refused_over_tls(deployed, "wrong")


def test_database_tasks_against_the_running_influxdb(running: tuple[Deployment, Services]) -> None:
    deployed, _ = running
    changed, _ = play(deployed.inventory, "--tags", "influxdb_database", "-e", "powerhub_manage_services=true")
    assert changed == 1  # the hub created the database: the retention policy is what is new
    answer = requests.post(f"http://127.0.0.1:{deployed.ports['influx']}/query",
                           data={"q": 'SHOW RETENTION POLICIES ON "powerhub"'}, timeout=10).json()
    rows = answer["results"][0]["series"][0]["values"]
    assert ["powerhub", "9600h0m0s"] in [row[:2] for row in rows if row[4]]  # 400 days, the default policy
    again, _ = play(deployed.inventory, "--tags", "influxdb_database", "-e", "powerhub_manage_services=true")
    assert again == 0


def test_rotating_an_agents_password_changes_its_line_and_secret_only(deployed: Deployment) -> None:
    from hub.mqtt_acl import verifies

    passwd = deployed.root / "etc/mosquitto/powerhub/passwd"
    before = dict(line.split(":", 1) for line in passwd.read_text().splitlines())
    hosts = deployed.inventory / "hosts.yml"
    inventory = json.loads(hosts.read_text())
    inventory["all"]["vars"]["edge_agent_mqtt_password"] = "rotated-secret"
    hosts.write_text(json.dumps(inventory, indent=1))
    changed, out = play(deployed.inventory)
    after = dict(line.split(":", 1) for line in passwd.read_text().splitlines())
    assert after["hub"] == before["hub"] and after["lab-pi"] != before["lab-pi"]
    assert verifies(after["lab-pi"], "rotated-secret")
    assert (deployed.root / "etc/powerhub/secrets/agent/mqtt.pass").read_text() == "rotated-secret"
    # The broker's copy of the password, its passwd file (same owner) and the agent's secret: nothing else.
    assert changed == 3, "\n".join(line for line in out.splitlines() if line.startswith(("TASK", "changed")))
