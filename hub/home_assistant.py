"""Home Assistant MQTT discovery: every stored series (and every formula's) appears in Home Assistant as a sensor.

For each series the hub publishes a retained config on `{prefix}/sensor/powerhub_{site}_{device}_{channel}/config`:
power as `device_class: power` (W, `state_class: measurement`), energy as `device_class: energy` (kWh,
`state_class: total_increasing`: a daily or hourly total restarting at zero reads as a meter reset), availability
from the publishing agent's retained status. States go to `{root}/ha/{site}/{device}/{channel}` as plain numbers
(the data topics may carry arrays, which Home Assistant's templates cannot pick the last value from), at most once
per `every_s` per series. When Home Assistant announces itself (`{prefix}/status` = `online`) every config and
state is sent again, as its documentation asks.

Each alert, when it first fires, becomes a binary sensor of `device_class: problem` on
`{prefix}/binary_sensor/powerhub_alert_{site}_{rule}_{subject}/config`, on the alert's own retained topic
(`{root}/alert/...`, SPEC.md section 2): on while it fires, off once resolved (and once its retained message is
cleared), with the alert's summary, severity and times as attributes. It stays after the alert resolves, so Home
Assistant's history and automations keep it; it joins the Home Assistant device of its series or PDU.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable

import paho.mqtt.client as paho

from telemetry import Point, SeriesKey
from telemetry.series import ENERGY, POWER
from telemetry.topics import alert_topic

log = logging.getLogger(__name__)

# The alert topic's payload is JSON while the alert lives and empty once cleared: both must read as a state.
ALERT_STATE = "{{ 'ON' if value_json is defined and value_json.state == 'firing' else 'OFF' }}"
ALERT_ATTRIBUTES = "{{ value_json | tojson if value_json is defined else '{}' }}"


def _object_id(*parts: str) -> str:
    return "_".join(parts).replace(".", "_").replace("-", "_")


class HomeAssistant:
    def __init__(self, client: paho.Client, root: str, prefix: str = "homeassistant", every_s: float = 5.0,
                 agent_of: Callable[[str, str], str | None] = lambda _s, _d: None) -> None:
        self.client, self.root, self.prefix, self.every_s = client, root, prefix, every_s
        self.agent_of = agent_of
        self.birth_topic = f"{prefix}/status"
        self._configs: dict[SeriesKey, bytes] = {}
        self._alert_configs: dict[str, bytes] = {}  # discovery topic -> config, of every alert that fired
        self._latest: dict[SeriesKey, float] = {}
        self._changed: set[SeriesKey] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="home-assistant", daemon=True)

    def state_topic(self, key: SeriesKey) -> str:
        return f"{self.root}/ha/{key.site}/{key.device}/{key.channel}"

    def config(self, key: SeriesKey) -> dict[str, object]:
        energy = key.measurement == ENERGY.name
        doc: dict[str, object] = {
            "name": f"{key.device} {key.channel}",
            "unique_id": f"powerhub_{key.site}_{key.device}_{key.channel}",
            "object_id": f"powerhub_{key.site}_{key.device}_{key.channel}".replace("-", "_"),
            "state_topic": self.state_topic(key),
            "unit_of_measurement": ENERGY.unit if energy else POWER.unit,
            "device_class": "energy" if energy else "power",  # Home Assistant's classes
            "state_class": "total_increasing" if energy else "measurement",
            "device": {"identifiers": [f"powerhub_{key.site}_{key.device}"], "name": f"{key.site} {key.device}",
                       "manufacturer": "powerhub"},
        }
        agent = self.agent_of(key.site, key.device)
        if agent is not None:
            doc["availability"] = [{"topic": f"{self.root}/status/{key.site}/{agent}",
                                    "value_template": "{{ value_json.state }}"}]
        return doc

    def alert_config(self, site: str, rule: str, subject: str) -> tuple[str, dict[str, object]]:
        """The discovery topic and config of one alert's problem binary sensor."""
        parts = subject.split(".")
        device = parts[1] if len(parts) == 3 and parts[0] == site else subject  # a series' device, or a PDU's
        object_id = _object_id("powerhub_alert", site, rule, subject)
        topic = alert_topic(self.root, site, rule, subject)
        return f"{self.prefix}/binary_sensor/{object_id}/config", {
            "name": f"{rule} {subject}",
            "unique_id": object_id,
            "object_id": object_id,
            "device_class": "problem",
            "state_topic": topic,
            "value_template": ALERT_STATE,
            "json_attributes_topic": topic,
            "json_attributes_template": ALERT_ATTRIBUTES,
            "device": {"identifiers": [f"powerhub_{site}_{device}"], "name": f"{site} {device}",
                       "manufacturer": "powerhub"},
        }

    def alert_fired(self, site: str, rule: str, subject: str) -> None:
        """Called before an alert's state is published: its binary sensor, the first time it fires."""
        topic, doc = self.alert_config(site, rule, subject)
        with self._lock:
            if topic in self._alert_configs:
                return
            self._alert_configs[topic] = json.dumps(doc).encode()
        self.client.publish(topic, self._alert_configs[topic], qos=1, retain=True)

    def seen(self, points: Iterable[Point]) -> None:
        """Points were stored: announce new series, remember their newest values."""
        new = []
        with self._lock:
            for p in points:
                if p.key.measurement not in (POWER.name, ENERGY.name) or p.number is None:
                    continue
                if p.key not in self._configs:
                    self._configs[p.key] = json.dumps(self.config(p.key)).encode()
                    new.append(p.key)
                self._latest[p.key] = p.number
                self._changed.add(p.key)
        for key in new:
            self._publish_config(key)

    def birth(self, payload: bytes) -> None:
        """Home Assistant (re)started: send every config and state again."""
        if payload.strip() != b"online":
            return
        with self._lock:
            keys = list(self._configs)
            self._changed.update(keys)
            alerts = list(self._alert_configs.items())
        log.info("Home Assistant is online: sending %d sensor and %d alert configs again", len(keys), len(alerts))
        for key in keys:
            self._publish_config(key)
        for topic, config in alerts:
            self.client.publish(topic, config, qos=1, retain=True)
        self.flush()

    def _publish_config(self, key: SeriesKey) -> None:
        topic = f"{self.prefix}/sensor/powerhub_{key.site}_{key.device}_{key.channel}/config"
        self.client.publish(topic, self._configs[key], qos=1, retain=True)

    def flush(self) -> None:
        with self._lock:
            changed, self._changed = self._changed, set()
            states = [(k, self._latest[k]) for k in changed]
        for key, value in states:
            self.client.publish(self.state_topic(key), f"{value:.6g}", qos=0, retain=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.flush()
