"""Home Assistant MQTT discovery through a real Mosquitto: a sensor config per series (and per formula series),
availability from the agent's status, plain-number states, and everything sent again on Home Assistant's birth."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

from hub.config import HubConfig
from hub.run import start_hub
from telemetry.config import MqttConfig
from telemetry.metrics import Metrics
from telemetry.mqtt import connect_async, make_client
from telemetry.timeunits import now_ms
from tests.peers import Publisher, wait_for
from tests.test_formulas import HOUR, KEY, T0, sampled


class Listener:
    def __init__(self, cfg: MqttConfig, topics: list[str]) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = make_client(cfg, f"ha-listener-{id(self)}")
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        self.client.on_message = self._on_message
        connect_async(self.client, cfg)

    def _on_message(self, _c: object, _u: object, msg: Any) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_discovery_configs_states_and_birth(mqtt_doc: dict[str, Any], store_url: str, mqtt_root: str) -> None:
    prefix = f"ha-{mqtt_root}"
    doc = {"mqtt": mqtt_doc, "store": {"url": store_url},
           "hub": {"client_id": f"hub-{mqtt_root}", "batch_age_s": 0.05,
                   "home_assistant": {"enabled": True, "prefix": prefix, "every_s": 0.2}},
           "formulas": {"enabled": ["energy"]}}
    hub = start_hub(HubConfig.parse(doc), Metrics())
    assert hub.formulas is not None
    hub.formulas.every_s = 0.2
    wait_for(hub.connected.is_set, what="the hub to connect")
    listener = Listener(hub.mqtt, [f"{prefix}/#", f"{mqtt_root}/ha/#"])
    raw = Publisher(hub.mqtt)
    power_config = f"{prefix}/sensor/powerhub_lab_node17_power/config"
    energy_config = f"{prefix}/sensor/powerhub_lab_node17_energy-hour-power/config"
    try:
        status = {"state": "online", "ts": T0, "version": "t", "devices": ["node17"]}
        raw.send("status/lab/pi", json.dumps(status))
        wait_for(lambda: hub.agents.agent_of("lab", "node17") == "pi", what="the agent's status")
        pts = sampled(KEY, T0, T0 + HOUR, 60_000, 500.0)
        raw.send("data/lab/node17/power", json.dumps([p.to_wire() for p in pts]))
        wait_for(lambda: listener.on(power_config) and listener.on(energy_config), 20, "the sensor configs")
        power = json.loads(listener.on(power_config)[0])
        assert (power["device_class"], power["state_class"], power["unit_of_measurement"]) == (
            "power", "measurement", "W")
        assert power["state_topic"] == f"{mqtt_root}/ha/lab/node17/power"
        assert power["availability"] == [{"topic": f"{mqtt_root}/status/lab/pi",
                                          "value_template": "{{ value_json.state }}"}]
        energy = json.loads(listener.on(energy_config)[0])
        assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
            "energy", "total_increasing", "kWh")
        wait_for(lambda: listener.on(power["state_topic"]), what="the power state")
        assert float(listener.on(power["state_topic"])[-1]) == 500.0
        wait_for(lambda: listener.on(energy["state_topic"]), what="the energy state")
        assert float(listener.on(energy["state_topic"])[-1]) == 0.5  # 500 W for the hour

        before = len(listener.on(power_config))
        raw.client.publish(f"{prefix}/status", b"online", qos=1).wait_for_publish(5)
        wait_for(lambda: len(listener.on(power_config)) > before, what="the configs sent again on HA's birth")
    finally:
        raw.close()
        listener.close()
        hub.stop()
        hub.store.close()


def ha_template(template: str, payload: bytes) -> str:
    """A value template rendered as Home Assistant does: `value_json` only when the payload is JSON."""
    import jinja2

    variables: dict[str, Any] = {"value": payload.decode()}
    with contextlib.suppress(ValueError):
        variables["value_json"] = json.loads(payload)
    return jinja2.Environment().from_string(template).render(**variables)


def test_each_alert_is_a_problem_binary_sensor_on_while_it_fires(mqtt_doc: dict[str, Any], store_url: str,
                                                                  mqtt_root: str, tmp_path: Any) -> None:
    prefix = f"ha-{mqtt_root}"
    doc = {"mqtt": mqtt_doc, "store": {"url": store_url},
           "hub": {"client_id": f"hub-{mqtt_root}", "batch_age_s": 0.05,
                   "home_assistant": {"enabled": True, "prefix": prefix, "every_s": 0.2}},
           "alerts": {"state_file": str(tmp_path / "alerts.sqlite"), "stale": {"enabled": False},
                      "rules": [{"name": "node-hot", "series": "lab.node17.power", "above": 1000.0}]}}
    hub = start_hub(HubConfig.parse(doc), Metrics())
    listener = Listener(hub.mqtt, [f"{prefix}/binary_sensor/#", f"{mqtt_root}/alert/#"])
    raw = Publisher(hub.mqtt)
    config_topic = f"{prefix}/binary_sensor/powerhub_alert_lab_node_hot_lab_node17_power/config"
    alert_topic = f"{mqtt_root}/alert/lab/node-hot/lab.node17.power"
    try:
        wait_for(hub.marked.is_set, what="the hub to subscribe")
        now = now_ms()  # recent: an old point's alert goes to the history only
        raw.send("data/lab/node17/power", json.dumps({"ts": now, "seq": 1, "w": 1500.0}))
        wait_for(lambda: listener.on(config_topic) and listener.on(alert_topic), 20, "the sensor and the alert")
        config = json.loads(listener.on(config_topic)[0])
        assert (config["device_class"], config["state_topic"], config["json_attributes_topic"]) == (
            "problem", alert_topic, alert_topic)
        assert config["device"]["identifiers"] == ["powerhub_lab_node17"]  # beside node17's power sensor
        firing = listener.on(alert_topic)[0]
        assert ha_template(config["value_template"], firing) == "ON"
        assert json.loads(ha_template(config["json_attributes_template"], firing))["summary"] == (
            "lab.node17.power: w 1500 W is above 1000 (node-hot)")

        raw.send("data/lab/node17/power", json.dumps({"ts": now + 1000, "seq": 2, "w": 500.0}))
        wait_for(lambda: len(listener.on(alert_topic)) >= 3, 20, "the resolution and the cleared topic")
        resolved, cleared = listener.on(alert_topic)[1:3]
        assert [ha_template(config["value_template"], p) for p in (resolved, cleared)] == ["OFF", "OFF"]
        assert ha_template(config["json_attributes_template"], cleared) == "{}"
        assert len(listener.on(config_topic)) == 1  # one config, kept after the resolution

        raw.client.publish(f"{prefix}/status", b"online", qos=1).wait_for_publish(5)
        wait_for(lambda: len(listener.on(config_topic)) == 2, what="the alert's config sent again on HA's birth")
    finally:
        raw.close()
        listener.close()
        hub.stop()
        hub.store.close()
