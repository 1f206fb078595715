"""Helpers that start the real peers powerhub talks to: Mosquitto, InfluxDB, a pty pair for the Arduino,
snmpsim serving recorded PDU walks, ipmi_sim as a BMC. Each starts on free loopback ports with its data in a temp
dir and stops what it started. Tests (through the fixtures in conftest.py) and `make bench` both import them."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import requests
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
)

from telemetry import Point, SeriesKey, encode_points
from telemetry.config import MqttConfig
from telemetry.mqtt import connect_async, make_client
from telemetry.topics import data_topic

ARTIFACTS = Path(__file__).parent / "artifacts"



def free_port() -> int:
    return free_ports(1)[0]



def free_ports(n: int) -> list[int]:
    """`n` distinct free TCP ports: held open together, so the kernel cannot hand out one twice."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()



def secret_file(path: Path, text: str) -> Path:
    """A file holding a secret, private as powerhub insists (0600)."""
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path



def wait_for(predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; fail the test with `what` if it never is."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)



def wait_port(port: int, timeout_s: float = 15.0) -> None:
    def is_open() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(is_open, timeout_s, f"port {port}")



class Mosquitto:
    """A real Mosquitto on a loopback port; `restart()` keeps its persistence file."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "user root\n"  # as root mosquitto would switch to its own user and lose access to the temp dir
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 0\n"
            f"log_dest file {workdir}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"



class InfluxDB:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.conf = workdir / "influxdb.conf"
        self.port = self._configure()
        self.proc: subprocess.Popen[bytes] | None = None

    def _configure(self) -> int:
        """Write the config with new ports; the HTTP port."""
        port, rpc_port = free_ports(2)
        self.conf.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{rpc_port}"\n'
            f'[meta]\n  dir = "{self.workdir}/meta"\n'
            f'[data]\n  dir = "{self.workdir}/data"\n  wal-dir = "{self.workdir}/wal"\n  query-log-enabled = false\n'
            "[monitor]\n  store-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
        )
        return port

    def start(self) -> None:
        """Start influxd; if it exits before answering (a port taken since it was picked), again on new ports."""
        for _attempt in range(3):
            with open(self.workdir / "influxd.log", "ab") as log:
                proc = self.proc = subprocess.Popen(["influxd", "-config", str(self.conf)], stdout=log, stderr=log)
            wait_for(lambda p=proc: self._pings() or p.poll() is not None, 30, "InfluxDB /ping")
            if proc.poll() is None:
                return
            self.port = self._configure()
        tail = (self.workdir / "influxd.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"influxd exited before answering /ping, three times; its log ends:\n{tail}")

    def _pings(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/ping", timeout=1).status_code == 204
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None



class Pty:
    """A pty pair standing in for the Arduino's USB serial port; `port` is a stable symlink, like udev's."""

    def __init__(self, workdir: Path) -> None:
        self.port = str(workdir / "arduino")
        self.master: int | None = None
        self.plug()

    def plug(self) -> None:
        master, slave = os.openpty()
        name = os.ttyname(slave)
        os.close(slave)
        if os.path.lexists(self.port):
            os.unlink(self.port)
        os.symlink(name, self.port)
        self.master = master

    def unplug(self) -> None:
        """The USB cable pulled: the device node goes away and the open port fails."""
        if self.master is not None:
            os.close(self.master)
            self.master = None
        if os.path.lexists(self.port):
            os.unlink(self.port)

    def write(self, text: str) -> None:
        assert self.master is not None
        os.write(self.master, text.encode())



SNMPSIM_VENV = Path(os.environ.get("SNMPSIM_VENV", "/opt/powerhub-test/snmpsim"))



SNMP_V3 = {"user": "powerhub", "auth_key": "auth-secret-1", "priv_key": "priv-secret-1"}



def snmpsim_walk(name: str) -> Path:
    """A recorded walk shipped by snmpsim-data (UPS/ folder), by file name without extension."""
    found = sorted(SNMPSIM_VENV.glob(f"lib/python3*/site-packages/snmpsim_data/data/UPS/{name}.snmprec*"))
    assert found, f"snmpsim-data walk {name} not found under {SNMPSIM_VENV}: run `make test`"
    return found[0]



class SnmpSim:
    """snmpsim serving recorded PDU walks; the community (v1/v2c) or v3 context is the file's name."""

    def __init__(self, files: dict[str, Path | str]) -> None:
        # A world-readable dir of its own: as root, snmpsim drops to `nobody` before reading the data.
        self.root = Path(tempfile.mkdtemp(prefix="powerhub-snmpsim-"))
        self.root.chmod(0o755)
        data, cache = self.root / "data", self.root / "cache"
        data.mkdir()
        cache.mkdir()
        for community, source in files.items():
            if isinstance(source, Path):
                shutil.copy(source, data / (community + "".join(source.suffixes)))
            else:
                (data / f"{community}.snmprec").write_text(source)
        for p in (data, *data.iterdir()):
            p.chmod(0o755 if p.is_dir() else 0o644)
        self.port = free_port()
        args = [str(SNMPSIM_VENV / "bin" / "snmpsim-command-responder"), f"--data-dir={data}",
                f"--agent-udpv4-endpoint=127.0.0.1:{self.port}", f"--cache-dir={cache}",
                f"--v3-user={SNMP_V3['user']}", f"--v3-auth-key={SNMP_V3['auth_key']}", "--v3-auth-proto=SHA",
                f"--v3-priv-key={SNMP_V3['priv_key']}", "--v3-priv-proto=AES"]
        if os.geteuid() == 0:
            shutil.chown(cache, "nobody", "nogroup")
            args += ["--process-user=nobody", "--process-group=nogroup"]
        with open(self.root / "snmpsim.log", "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        wait_for(self._answers, 30, "snmpsim to answer")

    def _answers(self) -> bool:
        """A GET with the first file's community answers (an unknown community would only time out)."""
        assert self.proc.poll() is None, (self.root / "snmpsim.log").read_text()[-2000:]
        community = next(p.name.split(".")[0] for p in (self.root / "data").iterdir())

        async def ask() -> bool:
            engine = SnmpEngine()
            try:
                target = await UdpTransportTarget.create(("127.0.0.1", self.port), timeout=0.3, retries=0)
                ei, _, _, _ = await get_cmd(engine, CommunityData(community), target, ContextData(),
                                            ObjectType(ObjectIdentity("1.3.6.1.2.1.1.1.0")))
                return ei is None
            finally:
                engine.close_dispatcher()

        return asyncio.run(ask())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)



IPMI_EXT_SOURCE = Path(__file__).parent / "testdata" / "ipmi" / "dcmi_power.c"



BMC_USER, BMC_PASSWORD = "admin", "secret"



class IpmiSim:
    """OpenIPMI's ipmi_sim as a BMC on a loopback UDP port; with `watts`, it answers DCMI power readings."""

    def __init__(self, workdir: Path, extension: Path | None, watts: tuple[int, int, int, int] = (0, 0, 0, 0),
                 port: int | None = None) -> None:
        self.workdir, self.extension, self.watts = workdir, extension, watts
        self.port = port or free_port_udp()
        workdir.mkdir(parents=True, exist_ok=True)
        self.state_file = workdir / "reading-state"  # the DCMI reading's state byte, hex: see dcmi_power.c
        self.measuring(True)
        init = " ".join([*map(str, watts), str(self.state_file)])
        loadlib = f'loadlib "{extension}" "{init}"\n' if extension else ""
        (workdir / "lan.conf").write_text(
            'name "powerhub-test"\nset_working_mc 0x20\nstartlan 1\n'
            f"  addr 127.0.0.1 {self.port}\n  priv_limit admin\n"
            "  allowed_auths_callback none md2 md5 straight\n  allowed_auths_user none md2 md5 straight\n"
            "  allowed_auths_operator none md2 md5 straight\n  allowed_auths_admin none md2 md5 straight\n"
            "  guid a123456789abcdefa123456789abcdef\nendlan\n"
            f'user 2 true "{BMC_USER}" "{BMC_PASSWORD}" admin 10 none md2 md5 straight\n' + loadlib
        )
        (workdir / "sim.emu").write_text(
            "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        state = self.workdir / "state"
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir()  # users persist in the state dir: a fresh one per start
        with open(self.workdir / "ipmi_sim.log", "ab") as log:
            self.proc = subprocess.Popen(["ipmi_sim", "-c", str(self.workdir / "lan.conf"), "-f",
                                          str(self.workdir / "sim.emu"), "-s", str(state), "-n"],
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        wait_for(lambda: self.ipmitool("mc", "info").returncode == 0, 20, "ipmi_sim to answer")

    def measuring(self, active: bool) -> None:
        """Switch the BMC's power measurement on or off (DCMI reading state 0x40 or 0x00), while it runs."""
        self.state_file.write_text("40" if active else "00")

    def ipmitool(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ipmitool", "-I", "lanplus", "-C", "3", "-N", "1", "-R", "1", "-H", "127.0.0.1",
                               "-p", str(self.port), "-U", BMC_USER, "-P", BMC_PASSWORD, *args],
                              capture_output=True, text=True, timeout=20, check=False)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None



def free_port_udp() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """An HTTP endpoint that records the JSON POSTed to it: the stand-in for a chat or paging service behind
    Alertmanager, and for any webhook. `fail` makes it answer 503 (a receiver that is down)."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[Any] = []
        received, owner = self.received, self
        self.fail = False

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = 503 if owner.fail else 200
                if not owner.fail:
                    received.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Alertmanager:
    """A real Prometheus Alertmanager on a loopback port (no cluster gossip), grouping per alert and waiting 1 s
    instead of 30, with one webhook receiver that records what it would page (`send_resolved`)."""

    BINARY = "/usr/bin/prometheus-alertmanager"

    def __init__(self, workdir: Path, receiver_url: str, port: int | None = None,
                 group_by: tuple[str, ...] = ("alertname", "site", "subject")) -> None:
        self.workdir, self.port = workdir, port or free_port()
        self.conf = workdir / "alertmanager.yml"
        self.conf.write_text(
            f"route:\n  receiver: pager\n  group_by: [{', '.join(group_by)}]\n"
            "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
            f"receivers:\n  - name: pager\n    webhook_configs:\n      - url: {receiver_url}\n"
            "        send_resolved: true\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.workdir / "alertmanager.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.BINARY, f"--config.file={self.conf}", f"--storage.path={self.workdir}/data",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
                stdout=subprocess.DEVNULL, stderr=log)
        wait_for(self._ready, 15, "Alertmanager to be ready")

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def alerts(self) -> list[dict[str, Any]]:
        """What Alertmanager holds as active now (firing, not silenced)."""
        resp = requests.get(f"{self.url}/api/v2/alerts", params={"active": "true"}, timeout=5)
        resp.raise_for_status()
        return list(resp.json())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Publisher:
    """A raw MQTT client, as any other program (or a broken one) would publish."""

    def __init__(self, cfg: MqttConfig) -> None:
        self.cfg = cfg
        self.client = make_client(cfg, f"raw-{id(self)}")
        connect_async(self.client, cfg)
        wait_for(self.client.is_connected, what="the publisher to connect")

    def send(self, sub_topic: str, payload: bytes | str) -> None:
        self._publish(f"{self.cfg.root}/{sub_topic}", payload)

    def send_points(self, key: SeriesKey, points: list[Point]) -> None:
        """Points of one series on its data topic, as an agent publishes them."""
        self._publish(data_topic(self.cfg.root, key), encode_points(points))

    def _publish(self, topic: str, payload: bytes | str) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.rc == paho.MQTT_ERR_SUCCESS

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
