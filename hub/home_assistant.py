"""Home Assistant MQTT discovery: every stored series (and every formula's) appears in Home Assistant as a sensor.

For each series the hub publishes a retained config on `{prefix}/sensor/powerhub_{site}_{device}_{channel}/config`:
power as `device_class: power` (W, `state_class: measurement`), energy as `device_class: energy` (kWh,
`state_class: total_increasing`: a daily or hourly total restarting at zero reads as a meter reset), availability
from the publishing agent's retained status. States go to `{root}/ha/{site}/{device}/{channel}` as plain numbers
(the data topics may carry arrays, which Home Assistant's templates cannot pick the last value from), at most once
per `every_s` per series. When Home Assistant announces itself (`{prefix}/status` = `online`) every config and
state is sent again, as its documentation asks.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable

import paho.mqtt.client as paho

from telemetry import Point, SeriesKey
from telemetry.series import ENERGY, POWER

log = logging.getLogger(__name__)


class HomeAssistant:
    def __init__(self, client: paho.Client, root: str, prefix: str = "homeassistant", every_s: float = 5.0,
                 agent_of: Callable[[str, str], str | None] = lambda _s, _d: None) -> None:
        self.client, self.root, self.prefix, self.every_s = client, root, prefix, every_s
        self.agent_of = agent_of
        self.birth_topic = f"{prefix}/status"
        self._configs: dict[SeriesKey, bytes] = {}
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
        log.info("Home Assistant is online: sending %d sensor configs again", len(keys))
        for key in keys:
            self._publish_config(key)
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
