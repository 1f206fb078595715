"""Seq gaps, duplicates and agents' online state, as the hub sees them through a real Mosquitto and shows them on
its own HTTP endpoint (/metrics, /api/v1/agents) and, through `web.hub_url`, in the web app's /api/v1/series."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from hub.agents import AgentBook
from hub.http import HubHttp
from hub.stores import Store
from telemetry.config import MqttConfig
from telemetry.metrics import Metrics
from telemetry.mqtt import close, connect_async, make_client
from telemetry.timeunits import now_ms
from tests.peers import Publisher, wait_for
from tests.test_hub import T0, start_hub
from web import create_app


def test_gaps_and_duplicates_reach_metrics_agents_and_series(mqtt_cfg: MqttConfig, store: Store, store_url: str,
                                                             mqtt_root: str) -> None:
    metrics = Metrics()
    hub = start_hub(mqtt_cfg, store, metrics, f"hub-{mqtt_root}")
    http = HubHttp("127.0.0.1", 0, metrics, hub.agents)
    http.start()
    raw = Publisher(mqtt_cfg)
    try:
        status = {"state": "online", "ts": T0, "version": "test", "devices": ["mainmeter"]}
        raw.client.publish(f"{mqtt_root}/status/lab/pi", json.dumps(status), qos=1, retain=True).wait_for_publish(5)
        wait_for(lambda: hub.agents.agent_of("lab", "mainmeter") == "pi", what="the hub to read the status")
        for seq in (1, 2, 5, 6, 6):  # 3 and 4 never come; 6 comes twice
            raw.send("data/lab/mainmeter/power", json.dumps({"ts": T0 + seq * 1000, "seq": seq, "w": 100.0}))
        wait_for(lambda: metrics.value("powerhub_points_stored_total") >= 5, what="the points stored")

        base = f"http://127.0.0.1:{http.port}"
        text = requests.get(f"{base}/metrics", timeout=5).text
        assert 'powerhub_seq_gaps{agent="pi",site="lab"} 2' in text
        assert 'powerhub_seq_duplicates_total{agent="pi",site="lab"} 1' in text
        assert 'powerhub_agent_online{agent="pi",site="lab"} 1' in text
        agents = requests.get(f"{base}/api/v1/agents", timeout=5).json()
        assert [(a["agent"], a["online"], a["gaps"], a["duplicates"], a["last_seq"]) for a in agents] == [
            ("pi", True, 2, 1, 6)]
        assert requests.get(f"{base}/nothing", timeout=5).status_code == 404

        app = create_app({"store": {"url": store_url}, "web": {"live": False, "hub_url": base}})
        (row,) = app.test_client().get("/api/v1/series").get_json()
        assert (row["id"], row["agent"], row["online"], row["gaps"]) == ("lab.mainmeter.power", "pi", True, 2)
    finally:
        raw.client.publish(f"{mqtt_root}/status/lab/pi", b"", qos=1, retain=True).wait_for_publish(5)
        raw.close()
        http.stop()
        hub.stop()


def test_unreachable_hub_leaves_the_agent_fields_empty(store: Store, store_url: str) -> None:
    from telemetry import Point, SeriesKey
    from tests.peers import free_port

    store.write([Point(SeriesKey("lab", "m", "power"), T0, 1, {"w": 1.0})])
    app = create_app({"store": {"url": store_url},
                      "web": {"live": False, "hub_url": f"http://127.0.0.1:{free_port()}"}})
    (row,) = app.test_client().get("/api/v1/series").get_json()
    assert (row["agent"], row["online"], row["gaps"]) == (None, None, None)


def test_a_real_agent_goes_online_then_offline(mqtt_doc: dict[str, Any], mqtt_cfg: MqttConfig, store: Store,
                                               tmp_path: Path, mqtt_root: str) -> None:
    metrics = Metrics()
    hub = start_hub(mqtt_cfg, store, metrics, f"hub-{mqtt_root}")
    agent = Agent(AgentConfig.parse({
        "mqtt": mqtt_doc,
        "agent": {"site": "lab", "name": "pi", "outbox": str(tmp_path / "outbox.sqlite"),
                  "readers": [{"kind": "simulated", "device": "house", "mode": "watts", "interval_s": 0.02}]},
    }))
    try:
        agent.start()
        wait_for(lambda: metrics.value("powerhub_points_stored_total") >= 20, what="the agent's points stored")
        (pi,) = hub.agents.snapshot()
        assert (pi["agent"], pi["online"], pi["devices"], pi["gaps"], pi["duplicates"]) == (
            "pi", True, ["house"], 0, 0)
        agent.stop()
        wait_for(lambda: hub.agents.snapshot()[0]["online"] is False, what="the agent to say offline")
        assert metrics.value("powerhub_agent_online", site="lab", agent="pi") == 0
    finally:
        agent.stop()
        hub.stop()


def retained_status(mqtt_cfg: MqttConfig, topic: str) -> dict[str, Any]:
    """What a subscriber that reads only the retained status sees: subscribe afresh, take the stored copy."""
    got: list[dict[str, Any]] = []
    client = make_client(mqtt_cfg, client_id=f"reader-{time.monotonic_ns()}")
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_message = lambda _c, _u, msg: got.append(json.loads(msg.payload)) if msg.retain else None
    connect_async(client, mqtt_cfg)
    try:
        wait_for(lambda: got, what=f"the retained status on {topic}")
    finally:
        close(client)
    return got[0]


def test_a_killed_agents_will_names_its_devices_and_a_recent_time(mqtt_doc: dict[str, Any], mqtt_cfg: MqttConfig,
                                                                  store: Store, tmp_path: Path,
                                                                  mqtt_root: str) -> None:
    metrics = Metrics()
    hub = start_hub(mqtt_cfg, store, metrics, f"hub-{mqtt_root}")
    http = HubHttp("127.0.0.1", 0, metrics, hub.agents)
    http.start()
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'[mqtt]\nurl = "{mqtt_doc["url"]}"\nroot = "{mqtt_root}"\n'
        f'[agent]\nsite = "lab"\nname = "pi"\noutbox = "{tmp_path}/outbox.sqlite"\n'
        '[[agent.readers]]\nkind = "simulated"\ndevice = "house"\nmode = "watts"\ninterval_s = 0.05\n'
        '[[agent.readers]]\nkind = "simulated"\ndevice = "garage"\nmode = "watts"\ninterval_s = 0.05\n')
    started_ms = now_ms()
    agent = subprocess.Popen([sys.executable, "-m", "powerhub_cli", "agent", "--config", str(cfg)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{http.port}"
    try:
        wait_for(lambda: metrics.value("powerhub_points_stored_total") >= 20, what="the agent's points stored")
        time.sleep(0.5)
        killed_ms = now_ms()
        agent.send_signal(signal.SIGKILL)  # no clean stop: only the broker's last will says it is gone
        agent.wait(10)
        wait_for(lambda: hub.agents.snapshot()[0]["online"] is False, what="the hub to see the will")
        will = retained_status(mqtt_cfg, f"{mqtt_root}/status/lab/pi")
        assert will["state"] == "offline" and will["devices"] == ["garage", "house"]
        assert started_ms <= will["ts"] <= killed_ms  # stamped at its last connection, not 1970
        (pi,) = requests.get(f"{base}/api/v1/agents", timeout=5).json()
        assert (pi["online"], pi["devices"]) == (False, ["garage", "house"])
        assert killed_ms <= pi["since"] <= now_ms()  # the hub saw the will arrive: that is when it went offline
        # A hub that starts later knows only the retained will: offline since its time, at the latest.
        later = AgentBook()
        later.status("lab", "pi", json.dumps(will).encode(), retained=True)
        assert later.snapshot()[0]["since"] == will["ts"]
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
        clear = Publisher(mqtt_cfg)
        clear.client.publish(f"{mqtt_root}/status/lab/pi", b"", qos=1, retain=True).wait_for_publish(5)
        clear.close()
        http.stop()
        hub.stop()
