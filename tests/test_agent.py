"""The agent: outbox, stamping, publishing to a real Mosquitto (also across a broker outage), and its CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from edge_agent.agent import Agent, Stamper
from edge_agent.config import AgentConfig
from edge_agent.outbox import Outbox
from telemetry import Point, SeriesKey, decode_payload, parse_data_topic
from telemetry.config import ConfigError, MqttConfig, Section
from telemetry.mqtt import connect_async, make_client
from tests.peers import Mosquitto, wait_for

KEY = SeriesKey("lab", "house", "power")
T0 = 1_700_000_000_000


def test_outbox_seq_survives_restart_and_ack_deletes(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    a = box.put(Point(KEY, T0, 0, {"w": 1.0}))
    b = box.put(Point(KEY, T0 + 1, 0, {"w": 2.0}))
    assert (a.seq, b.seq) == (1, 2)
    box.ack([1])
    box.close()
    box = Outbox(tmp_path / "o.sqlite")
    assert [p.seq for p in box.peek(10)] == [2]
    box.ack([2])
    c = box.put(Point(KEY, T0 + 2, 0, {"w": 3.0}))
    assert c.seq == 3  # never reused, even after the outbox emptied
    assert box.last_ts == {KEY.id: T0 + 2}
    assert box.peek(10, after_seq=3) == []
    assert len(box) == 1
    box.close()


def test_stamper_keeps_ts_strictly_increasing() -> None:
    st = Stamper("lab", {KEY.id: T0 + 100})
    assert st.point("house", "power", {"w": 1.0}, T0).ts_ms == T0 + 101  # the clock went back across a restart
    assert st.point("house", "power", {"w": 1.0}, T0 + 101).ts_ms == T0 + 102  # same millisecond
    assert st.point("house", "power", {"w": 1.0}, T0 + 500).ts_ms == T0 + 500
    assert st.point("other", "power", {"w": 1.0}, T0).ts_ms == T0


class Collector:
    """A plain MQTT subscriber, as another program would be, recording every data point it sees."""

    def __init__(self, cfg: MqttConfig) -> None:
        self.cfg = cfg
        self.points: list[Point] = []
        self.status: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.client = make_client(cfg, f"collector-{id(self)}")
        self.client.on_connect = lambda c, *_: c.subscribe(f"{cfg.root}/#", qos=1)
        self.client.on_message = self.on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        connect_async(self.client, cfg)
        wait_for(self.subscribed.is_set, what="the collector's subscription")

    def on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            if "/status/" in msg.topic:
                self.status.append(json.loads(msg.payload))
            else:
                self.points += decode_payload(parse_data_topic(self.cfg.root, msg.topic), bytes(msg.payload))

    def seqs(self) -> list[int]:
        with self.lock:
            return [p.seq for p in self.points]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def agent_doc(mqtt_doc: dict[str, Any], outbox: Path, **reader: Any) -> dict[str, Any]:
    reader = {"kind": "simulated", "device": "house", "mode": "watts", "interval_s": 0.01, **reader}
    return {"mqtt": mqtt_doc, "agent": {"site": "lab", "name": "pi", "outbox": str(outbox), "readers": [reader]}}


@pytest.fixture
def collector(mqtt_cfg: MqttConfig) -> Iterator[Collector]:
    c = Collector(mqtt_cfg)
    yield c
    c.close()


def test_a_reading_that_is_not_a_finite_number_is_dropped_and_counted(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    agent = Agent(AgentConfig.parse(agent_doc({"url": "mqtt://127.0.0.1:1"}, tmp_path / "o.sqlite")))
    agent.emit("house", "power", {"w": float("nan")})
    agent.emit("house", "power", {"w": 5.0})
    assert agent.counters["bad_values"] == 1
    assert "lab.house.power dropped" in caplog.text
    assert agent.outbox is not None and [p.fields for p in agent.outbox.peek(10)] == [{"w": 5.0}]
    agent.outbox.close()


def test_agent_publishes_every_point_once_in_order(mqtt_doc: dict[str, Any], collector: Collector,
                                                   tmp_path: Path) -> None:
    agent = Agent(AgentConfig.parse(agent_doc(mqtt_doc, tmp_path / "o.sqlite")))
    agent.start()
    wait_for(lambda: len(collector.seqs()) >= 100, what="100 points")
    agent.stop()
    acked = agent.metrics()["points_acked"]
    outbox = Outbox(tmp_path / "o.sqlite")
    assert [p.seq for p in outbox.peek(10)][:1] in ([], [acked + 1])  # only what was not acknowledged is left
    outbox.close()
    wait_for(lambda: len(collector.seqs()) >= acked, what="every acknowledged point at the subscriber")
    seqs = collector.seqs()
    assert seqs == list(range(1, len(seqs) + 1))  # each once, in order
    ts = [p.ts_ms for p in collector.points]
    assert ts == sorted(set(ts))
    assert collector.status[0]["state"] == "online" and collector.status[-1]["state"] == "offline"


def test_while_no_one_subscribes_the_agent_sends_one_message_at_a_time(mqtt_doc: dict[str, Any],
                                                                       mqtt_cfg: MqttConfig, tmp_path: Path) -> None:
    """MQTT 5's "no matching subscribers" keeps the points; the agent then probes with one message (a second apart)
    instead of sending its whole outbox round again, and drains it all once a subscriber is there."""
    outbox = Outbox(tmp_path / "o.sqlite")
    keys = [SeriesKey("lab", f"pdu-{i}", "power") for i in range(3)]
    for i in range(300):  # three series, interleaved: 300 messages of one point each
        outbox.put(Point(keys[i % 3], 1_700_000_000_000 + i * 1000, 0, {"w": float(i)}))
    outbox.close()
    agent = Agent(AgentConfig.parse(agent_doc(mqtt_doc, tmp_path / "o.sqlite", interval_s=3600)))
    agent.start()
    try:
        wait_for(lambda: agent.metrics().get("points_undelivered", 0) >= 300, what="the first round refused")
        sent = agent.metrics()["messages_sent"]  # the first round: 300 went out before the broker's first answer
        time.sleep(3.5)
        assert agent.metrics()["messages_sent"] - sent <= 5  # a probe a second; each whole round would be 300
        collector = Collector(mqtt_cfg)
        try:
            wait_for(lambda: len(set(collector.seqs())) >= 300, timeout_s=20, what="the outbox drained")
            assert sorted(set(collector.seqs())) == list(range(1, 301))
        finally:
            collector.close()
    finally:
        agent.stop()


def test_outbox_keeps_points_while_the_broker_is_down(tmp_path: Path, mqtt_root: str) -> None:
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker")
    doc = {"url": broker.url(), "root": mqtt_root}
    agent = Agent(AgentConfig.parse(agent_doc(doc, tmp_path / "o.sqlite")))
    agent.start()
    try:
        assert agent.outbox is not None
        wait_for(lambda: len(agent.outbox) >= 50, what="50 points held in the outbox")  # type: ignore[arg-type]
        broker.start()
        collector = Collector(MqttConfig.parse(Section(doc, "mqtt")))
        try:
            wait_for(lambda: len(collector.seqs()) >= 60, timeout_s=20, what="the backlog to drain")
            seqs = collector.seqs()
            assert seqs[:60] == list(range(1, 61))
        finally:
            collector.close()
    finally:
        agent.stop()
        broker.stop()


def run_cli(*args: str, timeout_s: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "powerhub_cli", *args], capture_output=True, text=True,
                          timeout=timeout_s, check=False)


def test_agent_stdout_prints_topic_and_payload(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[agent]\nsite = "lab"\nname = "pi"\n[[agent.readers]]\nkind = "simulated"\ndevice = "house"\n'
                   'mode = "watts"\ninterval_s = 0.05\n')
    proc = subprocess.Popen([sys.executable, "-m", "powerhub_cli", "agent", "--config", str(cfg), "--stdout"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0
    for i, line in enumerate(lines, start=1):
        topic, payload = line.rstrip("\n").split(" ", 1)
        assert topic == "powerhub/data/lab/house/power"
        body = json.loads(payload)
        assert body["seq"] == i and isinstance(body["w"], float) and body["ts"] > T0
    assert not (tmp_path / "var").exists()  # --stdout touches no outbox


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[agent]\nname = "pi"\n', "agent.site: required"),
        ('[agent]\nsite = "Lab!"\nname = "pi"\n', "agent.site: site 'Lab!' must match"),
        ('[agent]\nsite = "lab"\nname = "pi"\n', "agent.readers: at least one reader"),
        ('[agent]\nsite = "lab"\nname = "pi"\n[[agent.readers]]\nkind = "nope"\ndevice = "x"\n',
         "agent.readers[0].kind: unknown reader kind 'nope'"),
        ('[agent]\nsite = "lab"\nname = "pi"\n[[agent.readers]]\nkind = "simulated"\ndevice = "x"\n'
         '[[agent.readers]]\nkind = "blip_serial"\ndevice = "m"\n', "agent.readers[1].port: required"),
        ('[agent]\nsite = "lab"\nname = "pi"\n[[agent.readers]]\nkind = "blip_serial"\ndevice = "m"\n'
         'port = "/dev/x"\nbaudrate = "fast"\n', "agent.readers[0].baudrate: must be an integer"),
        ('[agent]\nsite = "lab"\nname = "pi"\n[[agent.readers]]\nkind = "simulated"\ndevice = "x"\ncolour = 1\n',
         "agent.readers[0].colour: unknown key"),
        ('[mqtt]\nurl = "http://x"\n[agent]\nsite = "lab"\nname = "pi"\n[[agent.readers]]\nkind = "simulated"\n'
         'device = "x"\n', "mqtt.url: must be mqtt://"),
        ("[agent\n", "agent.toml"),
        ('[formula]\nenabled = ["energy"]\n', "formula: unknown section (did you mean formulas?)"),
        ('[stor]\nurl = "sqlite:///x"\n', "stor: unknown section (did you mean store?)"),
        ('mqtt = "mqtt://x"\n', "mqtt: must be a table"),
        ('[mqtt]\nrooot = "x"\n[agent]\nsite = "lab"\nname = "pi"\n[[agent.readers]]\nkind = "simulated"\n'
         'device = "x"\n', "mqtt.rooot: unknown key (did you mean root?)"),
        ('[agent]\nsite = "lab"\nname = "pi"\n[[agent.readers]]\nkind = "simulated"\ndevice = "x"\n'
         '[inventory]\nmachine = []\n', "inventory.machine: unknown key (did you mean machines?)"),
    ],
)
def test_config_errors_exit_2_naming_the_key(tmp_path: Path, toml: str, message: str) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(toml)
    result = run_cli("agent", "--config", str(cfg), "--stdout")
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_error_type() -> None:
    with pytest.raises(ConfigError, match=r"agent.readers\[0\].imp_per_kwh: must be greater than 0"):
        AgentConfig.parse({"agent": {"site": "lab", "name": "pi", "readers": [
            {"kind": "blip_serial", "device": "m", "port": "/dev/x", "imp_per_kwh": 0}]}})


def test_export_cli_writes_csv_from_the_store(tmp_path: Path) -> None:
    from hub.stores import open_store

    store = open_store(f"sqlite:///{tmp_path}/p.sqlite")
    store.write([Point(KEY, T0 + i * 1000, i + 1, {"w": 100.0 + i}) for i in range(3)])
    store.close()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/p.sqlite"\n')
    out = tmp_path / "out.csv"
    result = run_cli("export", "--config", str(cfg), "--series", KEY.id, "--from", str(T0), "--to", str(T0 + 2000),
                     "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text() == ("timestamp,consumption\n2023-11-14T22:13:20.000Z,100.0\n"
                               "2023-11-14T22:13:21.000Z,101.0\n")
    bad = run_cli("export", "--config", str(cfg), "--series", "nope", "--date", "2023-11-14")
    assert bad.returncode != 0 and "site.device.channel" in bad.stderr
    # PowerGraph's daily file for T0's local day in Tokyo: 22:13 UTC on the 14th is 07:13 there on the 15th.
    daily = run_cli("export", "--config", str(cfg), "--series", KEY.id, "--date", "2023-11-15", "--tz", "Asia/Tokyo",
                    "--format", "powergraph-daily")
    assert daily.returncode == 0, daily.stderr
    assert daily.stdout == "07:13:20,100.0\n07:13:21,101.0\n07:13:22,102.0\n"
    assert "exported 3 points" in daily.stderr
    bad_tz = run_cli("export", "--config", str(cfg), "--series", KEY.id, "--date", "2023-11-15", "--tz", "Nowhere")
    assert bad_tz.returncode != 0 and "IANA time zone" in bad_tz.stderr


def test_inventory_machines_tag_their_sources() -> None:
    doc = {"agent": {"site": "lab", "name": "pi", "readers": [{"kind": "simulated", "device": "x"}]},
           "inventory": {"agents": [{"site": "lab", "name": "pi"}], "machines": [
               {"name": "node17", "site": "lab", "sources": ["pdu-a3.outlet-1", "pdu-b3.outlet-1", "node17.power"]},
               {"name": "elsewhere", "site": "dc2", "sources": ["pdu-a3.outlet-2"]}]}}
    cfg = AgentConfig.parse(doc)
    assert cfg.machines == {"pdu-a3.outlet-1": "node17", "pdu-b3.outlet-1": "node17", "node17.power": "node17"}
    st = Stamper("lab", {}, cfg.machines)
    assert st.point("pdu-a3", "outlet-1", {"w": 1.0}, T0).fields == {"w": 1.0, "machine": "node17"}
    assert st.point("pdu-a3", "outlet-2", {"w": 1.0}, T0).fields == {"w": 1.0}  # another site's machine
    bad = {**doc, "inventory": {"machines": [{"name": "n", "site": "lab", "sources": ["pdu-a3"]}]}}
    with pytest.raises(ConfigError, match=r"inventory.machines\[0\].sources\[0\]: must be device.channel"):
        AgentConfig.parse(bad)


def test_redact_url_hides_only_the_password() -> None:
    from telemetry.config import redact_url

    assert redact_url("influxdb://hub:s3cret@127.0.0.1:8086/powerhub") == "influxdb://hub:***@127.0.0.1:8086/powerhub"
    assert redact_url("sqlite:///var/lib/p.sqlite") == "sqlite:///var/lib/p.sqlite"


def test_reader_libraries_load_only_for_kinds_configured(tmp_path: Path) -> None:
    """An agent reading one blink meter does not carry pysnmp and pyghmi (~20 MB of a Pi's memory)."""
    code = (
        "import sys\n"
        "from edge_agent.config import AgentConfig\n"
        "AgentConfig.parse({'agent': {'site': 'lab', 'name': 'pi', 'outbox': sys.argv[1],\n"
        "    'readers': [{'kind': 'blip_serial', 'device': 'm', 'port': '/dev/null'}]}})\n"
        "print(sorted(m for m in ('pysnmp', 'pyghmi', 'serial') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "o.sqlite")], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['serial']"
    with pytest.raises(ConfigError, match=r"agent.readers\[0\].kind: unknown reader kind 'nope' \(known: blip_serial, "
                                          r"host_load, ipmi_dcmi, simulated, snmp_pdu\)"):
        AgentConfig.parse({"agent": {"site": "lab", "name": "pi", "readers": [{"kind": "nope"}]}})
