"""Nothing lost, nothing duplicated: a real agent (simulated meters at 100 Hz each), real Mosquitto, the hub and
the store as separate processes; a fault is injected and recovered from, then every `seq` the agent produced must be
stored exactly once, and the points the outbox held during the fault with their original `ts` and value.

Each scenario appends `scenario produced stored duplicated` to tests/artifacts/reliability.tsv.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.stores import open_store
from telemetry import Point, SeriesKey
from telemetry.payload import MAX_TS_MS, MIN_TS_MS
from tests.peers import InfluxDB, Mosquitto, wait_for

OUTAGE_S = 60  # how long the broker or InfluxDB stays down
RATE_HZ = 100
DEVICES = ("house", "rack", "lab")
SITE = "rel"
pytestmark = [pytest.mark.peers, pytest.mark.timeout(420)]  # each scenario runs a minute or two of real time
FAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))), Path("/nonexistent"))

Row = tuple[str, int, float]  # series id, ts, w


@dataclass
class Tally:
    produced: int
    stored: int
    duplicated: int


class TcpProxy:
    """A TCP relay between agent and broker that the test can stall (bytes stop flowing, as when packets are
    dropped) and reset (connections torn down with RST)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = threading.Event()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self.flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def reset(self) -> None:
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()

    def close(self) -> None:
        self.closed.set()
        self.flowing.set()
        self.listener.close()
        self.reset()


class Rig:
    def __init__(self, work: Path, broker: Mosquitto, store_url: str, produce_s: float,
                 agent_port: int | None = None, wait_for_hub: bool = False) -> None:
        self.work, self.broker, self.store_url = work, broker, store_url
        self.outbox = work / "outbox.sqlite"
        self.config = work / "powerhub.toml"
        readers = "".join(
            f'[[agent.readers]]\nkind = "simulated"\ndevice = "{d}"\nmode = "watts"\ninterval_s = {1 / RATE_HZ}\n'
            f"count = {int(produce_s * RATE_HZ)}\nseed = {i}\n\n" for i, d in enumerate(DEVICES))
        self.config.write_text(
            f'[mqtt]\nurl = "mqtt://127.0.0.1:{agent_port or broker.port}"\n\n'
            f'[agent]\nsite = "{SITE}"\nname = "a1"\noutbox = "{self.outbox}"\n'
            f'wait_for_hub = {str(wait_for_hub).lower()}\n\n{readers}'
            f'[hub]\nclient_id = "hub-{work.name}"\nbatch_age_s = 0.05\n\n'
            f'[store]\nurl = "{store_url}"\n'
        )
        # The hub connects to the broker directly, also when the agent goes through a proxy.
        self.hub_config = work / "hub.toml"
        self.hub_config.write_text(self.config.read_text().replace(
            f"127.0.0.1:{agent_port}", f"127.0.0.1:{broker.port}") if agent_port else self.config.read_text())
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.per_run = int(produce_s * RATE_HZ) * len(DEVICES)  # readings one agent run takes before its readers stop
        self.min_produced = 0

    def start(self, name: str, env: dict[str, str] | None = None) -> None:
        if name == "agent":
            # Settling waits for this run's readings too: right after a SIGKILL, a reader of the outbox can see it
            # as it was before the last commits, until the restarted agent has opened it (WAL recovery).
            self.min_produced = self.produced() + self.per_run
        config = self.hub_config if name == "hub" else self.config
        with open(self.work / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "powerhub_cli", name, "--config", str(config)],
                stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **(env or {})})

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(60)

    def log(self, name: str) -> str:
        return (self.work / f"{name}.log").read_text(errors="replace")

    def _outbox_db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.outbox}?mode=ro", uri=True, timeout=10)

    def produced(self) -> int:
        """The last seq the outbox gave out: every seq from 1 to it is a point the agent took."""
        if not self.outbox.exists():
            return 0
        db = self._outbox_db()
        try:
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
            return int(row[0]) if row else 0
        except sqlite3.OperationalError:
            return 0  # the agent is still creating the schema
        finally:
            db.close()

    def held_count(self) -> int:
        db = self._outbox_db()
        try:
            return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        except sqlite3.OperationalError:
            return -1  # the agent is still creating the schema
        finally:
            db.close()

    def held(self) -> dict[int, Row]:
        """What the outbox holds now: points not yet acknowledged by the broker."""
        db = self._outbox_db()
        try:
            rows = db.execute("SELECT seq, series, ts, fields FROM outbox").fetchall()
        finally:
            db.close()
        return {seq: (sid, ts, float(json.loads(fields)["w"])) for seq, sid, ts, fields in rows}

    def stored(self) -> list[Point]:
        store = open_store(self.store_url)
        try:
            return [p for d in (*DEVICES, "backlog") for p in
                    store.points(SeriesKey(SITE, d, "power"), MIN_TS_MS, MAX_TS_MS, 10**7)]
        finally:
            store.close()

    def settle(self, timeout_s: float = 180, every_reading: bool = True) -> None:
        """Wait until the readers are done, the outbox is empty and the store has every seq. `every_reading`:
        the agent's last run took all its readings (not so when a full disk refused some)."""
        last, changed_at = -1, time.monotonic()

        def done() -> bool:
            nonlocal last, changed_at
            produced = self.produced()
            if produced != last:
                last, changed_at = produced, time.monotonic()
            if time.monotonic() - changed_at < 1.0:  # the readers are still taking readings
                return False
            if (every_reading and produced < self.min_produced) or self.held():
                return False
            return len({p.seq for p in self.stored()}) >= produced

        try:
            wait_for(done, timeout_s, "every produced point stored")
        except AssertionError as exc:
            missing = sorted(self.unstored())
            raise AssertionError(f"{exc}: {len(missing)} seqs missing, e.g. {missing[:5]}..{missing[-5:]}; outbox "
                                 f"holds {self.held_count()}\n--- agent.log\n{self.log('agent')[-3000:]}\n--- hub.log\n"
                                 f"{self.log('hub')[-2000:]}") from None

    def unstored(self) -> set[int]:
        """The seqs the agent gave out that the store does not have."""
        return set(range(1, self.produced() + 1)) - {p.seq for p in self.stored()}

    def verify(self, scenario: str, snapshots: list[dict[int, Row]], artifacts: Path) -> Tally:
        produced = self.produced()
        points = self.stored()
        counts = Counter(p.seq for p in points)
        tally = Tally(produced, len(counts), sum(n - 1 for n in counts.values()))
        with open(artifacts / "reliability.tsv", "a") as out:
            out.write(f"{scenario}\t{tally.produced}\t{tally.stored}\t{tally.duplicated}\n")
        assert produced > 0
        missing = set(range(1, produced + 1)) - set(counts)
        assert not missing, (f"{len(missing)} seqs lost, e.g. {sorted(missing)[:10]}\n--- agent.log\n"
                             f"{self.log('agent')[-3000:]}\n--- hub.log\n{self.log('hub')[-2000:]}")
        assert set(counts) <= set(range(1, produced + 1))
        assert tally.duplicated == 0
        by_seq = {p.seq: (p.key.id, p.ts_ms, p.watts) for p in points}
        for snapshot in snapshots:
            assert snapshot, "the outbox held nothing during the fault: the scenario tested nothing"
            assert {seq: by_seq[seq] for seq in snapshot} == snapshot  # original ts and value
        for device in DEVICES:  # per series, ts follows seq
            series = sorted((p.seq, p.ts_ms) for p in points if p.key.device == device)
            assert all(a[1] < b[1] for a, b in itertools.pairwise(series))
        return tally

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name, signal.SIGKILL)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def influx_url(influxdb: InfluxDB, tmp_path: Path) -> str:
    return f"influxdb://127.0.0.1:{influxdb.port}/rel_{tmp_path.name.replace('-', '_')[-40:]}"


@contextlib.contextmanager
def make_rig(tmp_path: Path, broker: Mosquitto, store_url: str, produce_s: float,
             agent_port: int | None = None, wait_for_hub: bool = False) -> Iterator[Rig]:
    rig = Rig(tmp_path, broker, store_url, produce_s, agent_port, wait_for_hub)
    rig.start("hub")
    wait_for(lambda: "subscribing to" in rig.log("hub"), 20, "the hub to subscribe")
    try:
        yield rig
    finally:
        rig.close()


def wait_points(rig: Rig, n: int) -> None:
    wait_for(lambda: rig.produced() >= n, 30, f"{n} points produced")


@pytest.mark.parametrize("keep_persistence", [True, False], ids=["persistence", "no-persistence"])
def test_broker_down_for_a_minute(tmp_path: Path, broker: Mosquitto, influx_url: str, artifacts: Path,
                                  keep_persistence: bool) -> None:
    with make_rig(tmp_path, broker, influx_url, produce_s=OUTAGE_S + 15) as rig:
        rig.start("agent")
        wait_points(rig, 500)
        broker.stop()
        if not keep_persistence:
            (tmp_path / "mosquitto.db").unlink(missing_ok=True)
        time.sleep(OUTAGE_S)
        snapshot = rig.held()
        broker.start()
        rig.settle()
        tally = rig.verify(f"broker-down-{OUTAGE_S}s-{'kept' if keep_persistence else 'lost'}-persistence",
                           [snapshot], artifacts)
        assert len(snapshot) > OUTAGE_S * RATE_HZ  # the outage's points waited in the outbox
        assert tally.stored == tally.produced


@contextlib.contextmanager
def live_subscriber(broker: Mosquitto) -> Iterator[None]:
    """A subscriber to every data topic that stores nothing, as the web app's live feed is: to the broker, someone."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.subscribe("powerhub/data/#", qos=0)
    client.loop_start()
    try:
        yield
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("wait_for_hub", [False, True], ids=["no-subscriber", "live-subscriber-wait-for-hub"])
def test_broker_lost_its_sessions_and_the_hub_comes_back_last(tmp_path: Path, broker: Mosquitto, influx_url: str,
                                                             artifacts: Path, wait_for_hub: bool) -> None:
    """The no-persistence race made certain: the agent is back on a broker that lost the hub's session seconds before
    the hub is. MQTT 5's "no matching subscribers" keeps the points in the outbox; when a live subscriber answers
    for the absent hub, only waiting for the hub's "subscribed" marker does."""
    proxy = TcpProxy(broker.port)
    try:
        with make_rig(tmp_path, broker, influx_url, produce_s=20, agent_port=proxy.port,
                      wait_for_hub=wait_for_hub) as rig:
            rig.start("agent")
            wait_points(rig, 500)
            # What the broker acknowledged but had not yet passed to the hub goes with its sessions, whatever the
            # agent does (README, "What is not guaranteed"): hold the agent's traffic until the hub has it all.
            proxy.flowing.clear()
            wait_for(lambda: not rig.unstored() - set(rig.held()), 30, "the hub to store what the broker took")
            broker.stop()
            (tmp_path / "mosquitto.db").unlink(missing_ok=True)
            rig.stop("hub")
            broker.start()
            proxy.reset()
            proxy.flowing.set()
            with live_subscriber(broker) if wait_for_hub else contextlib.nullcontext():
                wait_for(lambda: rig.log("agent").count("connected to MQTT broker") >= 2, 60,
                         "the agent to reconnect")
                before = rig.held_count()
                time.sleep(3)  # without a hub, what it publishes now would be acknowledged and lost
                snapshot = rig.held()
                assert len(snapshot) >= before  # kept: nothing the agent sent in those seconds left the outbox
                rig.start("hub")
                rig.settle()
            rig.verify(f"broker-lost-sessions-hub-last-{'wait-for-hub' if wait_for_hub else 'no-subscriber'}",
                       [snapshot], artifacts)
    finally:
        proxy.close()


def test_agent_sigkill_mid_stream(tmp_path: Path, broker: Mosquitto, influx_url: str, artifacts: Path) -> None:
    with make_rig(tmp_path, broker, influx_url, produce_s=10) as rig:
        rig.start("agent")
        wait_points(rig, 1000)
        rig.stop("agent", signal.SIGKILL)
        snapshot = rig.held()
        rig.start("agent")
        rig.settle()
        rig.verify("agent-sigkill", [snapshot] if snapshot else [], artifacts)


def test_agent_sigkill_with_100k_points_in_the_outbox(tmp_path: Path, broker: Mosquitto, influx_url: str,
                                                      artifacts: Path) -> None:
    with make_rig(tmp_path, broker, influx_url, produce_s=5) as rig:
        prefill_outbox(rig.outbox, 100_000)
        rig.start("agent")
        # Killed as soon as the first acknowledgements come back: it drains faster than a test can watch.
        wait_for(lambda: 0 <= rig.held_count() < 100_000, 60, "the backlog to start draining")
        rig.stop("agent", signal.SIGKILL)
        snapshot = rig.held()
        assert len(snapshot) > 50_000
        rig.start("agent")
        rig.settle(timeout_s=300)
        tally = rig.verify("agent-sigkill-100k-outbox", [snapshot], artifacts)
        assert tally.produced >= 100_000


def prefill_outbox(path: Path, n: int) -> None:
    """An outbox as a long outage leaves it: `n` points of a `backlog` meter, 1 s apart, ending an hour ago."""
    from edge_agent.outbox import Outbox

    Outbox(path).close()  # the schema, as the agent makes it
    t0 = time.time_ns() // 1_000_000 - 3_600_000 - n * 1000
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO outbox (series, ts, fields) VALUES (?, ?, ?)",
                       ((f"{SITE}.backlog.power", t0 + i * 1000, json.dumps({"w": float(i % 5000)}))
                        for i in range(n)))
        db.execute("INSERT OR REPLACE INTO last_ts VALUES (?, ?)", (f"{SITE}.backlog.power", t0 + (n - 1) * 1000))
    db.close()


def test_hub_sigkill_while_agents_publish(tmp_path: Path, broker: Mosquitto, influx_url: str,
                                          artifacts: Path) -> None:
    with make_rig(tmp_path, broker, influx_url, produce_s=15) as rig:
        rig.start("agent")
        wait_points(rig, 1000)
        rig.stop("hub", signal.SIGKILL)
        time.sleep(5)  # the broker keeps the hub's session and queues for it
        rig.start("hub")
        rig.settle()
        rig.verify("hub-sigkill", [], artifacts)


def test_influxdb_down_for_a_minute(tmp_path: Path, broker: Mosquitto, artifacts: Path) -> None:
    (tmp_path / "influx").mkdir()
    influx = InfluxDB(tmp_path / "influx")
    influx.start()
    try:
        with make_rig(tmp_path, broker, f"influxdb://127.0.0.1:{influx.port}/rel", produce_s=OUTAGE_S + 15) as rig:
            rig.start("agent")
            wait_points(rig, 500)
            influx.stop()
            hub_pid = rig.procs["hub"].pid
            rss_before = rss_mb(hub_pid)
            time.sleep(OUTAGE_S)
            rss_after = rss_mb(hub_pid)
            influx.start()
            rig.settle()
            tally = rig.verify(f"influxdb-down-{OUTAGE_S}s", [], artifacts)
            assert tally.stored == tally.produced
            assert rss_after - rss_before < 40, f"hub grew from {rss_before:.0f} to {rss_after:.0f} MB"
            assert "store unavailable" in rig.log("hub")
    finally:
        influx.stop()


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def test_network_stalls_and_resets(tmp_path: Path, broker: Mosquitto, influx_url: str, artifacts: Path) -> None:
    proxy = TcpProxy(broker.port)
    try:
        with make_rig(tmp_path, broker, influx_url, produce_s=60, agent_port=proxy.port) as rig:
            rig.start("agent")
            wait_points(rig, 500)
            proxy.flowing.clear()  # nothing gets through: to the agent, packets are being dropped
            time.sleep(45)  # longer than the keepalive: paho gives up on the connection and reconnects
            snapshot = rig.held()
            proxy.flowing.set()
            for _ in range(3):
                time.sleep(2)
                proxy.reset()
            rig.settle()
            rig.verify("network-stall-45s-and-3-resets", [snapshot], artifacts)
    finally:
        proxy.close()


def test_disk_full_refuses_new_points_and_loses_none_it_took(tmp_path: Path, broker: Mosquitto, influx_url: str,
                                                             artifacts: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=False).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        with make_rig(tmp_path, broker, influx_url, produce_s=30) as rig:
            rig.outbox = disk / "outbox.sqlite"
            rig.config.write_text(rig.config.read_text().replace(str(tmp_path / "outbox.sqlite"), str(rig.outbox)))
            rig.start("agent")
            wait_points(rig, 300)
            ballast = disk / "ballast"
            with open(ballast, "wb") as fh:  # another program fills the disk
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                        fh.flush()
                except OSError:
                    pass
            # With the broker away the outbox must grow into the full disk. (With it, acknowledged rows free pages as
            # fast as new ones take them, and whether SQLite ever needs a new page was a matter of timing: seen once.)
            broker.stop()
            wait_for(lambda: "OUTBOX FULL" in rig.log("agent"), 30, "the agent to say its outbox is full")
            time.sleep(3)
            broker.start()
            ballast.unlink()  # the operator frees space
            rig.settle(every_reading=False)
            rig.stop("agent")
            metrics = json.loads(rig.log("agent").rsplit("agent stopped: ", 1)[1].splitlines()[0])
            assert metrics["outbox_refused"] > 0
            rig.verify("disk-full", [], artifacts)
            db = sqlite3.connect(rig.outbox)
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            db.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.skipif(not FAKETIME.exists(), reason="libfaketime is not installed (make test installs it)")
def test_clock_steps_back_an_hour(tmp_path: Path, broker: Mosquitto, influx_url: str, artifacts: Path) -> None:
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    # The offset file is read again once a second. Reading it on every clock call (FAKETIME_NO_CACHE) costs 11 µs
    # a call against 2 µs; on a busy machine the agent then took 30 s for 330 readings (seen in a fresh clone).
    env = {"LD_PRELOAD": str(FAKETIME), "FAKETIME_TIMESTAMP_FILE": str(offset), "FAKETIME_CACHE_DURATION": "1",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    with make_rig(tmp_path, broker, influx_url, produce_s=10) as rig:
        rig.start("agent", env)
        wait_points(rig, 1000)
        offset.write_text("-3600\n")  # the host's wall clock steps back one hour
        rig.settle()
        assert "clock stepped back" in rig.log("agent").lower()
        rig.verify("clock-back-1h", [], artifacts)

