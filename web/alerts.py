"""What fires now (`GET /api/v1/alerts`), read from the hubs' retained alert topics (`{root}/alert/#`, SPEC.md
section 2), so the web app needs no address of any hub and sees the alerts of every hub on a shared subscription.

The board subscribes on first use and keeps its subscription. Its first answer waits until the broker has sent every
retained alert: it subscribes to a topic of its own in the same request and publishes to it once subscribed; the
broker sends a subscription's retained messages before it handles a later publish, so when that message comes back
the board holds all of them."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import orjson
import paho.mqtt.client as paho

from telemetry.config import MqttConfig
from telemetry.mqtt import close, connect_async, make_client, survive
from telemetry.topics import alert_filter, web_topic

log = logging.getLogger(__name__)

SYNC_TIMEOUT_S = 5.0
FIELDS = ("state", "since", "severity", "summary", "value", "limit")


class AlertBoard:
    def __init__(self, mqtt: MqttConfig | None) -> None:
        self.mqtt = mqtt
        self._alerts: dict[str, dict[str, Any]] = {}  # topic -> the alert, as GET /api/v1/alerts shows it
        self._lock = threading.Lock()
        self._client: paho.Client | None = None
        self._synced = threading.Event()
        self._client_id = f"powerhub-web-alerts-{os.getpid()}-{id(self):x}"
        self._probe = web_topic(mqtt.root, self._client_id) if mqtt else ""

    def firing(self) -> list[dict[str, Any]]:
        """What fires now, by site, rule and subject; raises TimeoutError when the broker does not answer."""
        self._ensure_started()
        if not self._synced.wait(SYNC_TIMEOUT_S):
            raise TimeoutError("the MQTT broker did not answer")
        with self._lock:
            found = [a for a in self._alerts.values() if a["state"] == "firing"]
        return sorted(found, key=lambda a: (a["site"], a["rule"], a["subject"]))

    def stop(self) -> None:
        if self._client is not None:
            close(self._client)
            self._client = None

    def _ensure_started(self) -> None:
        with self._lock:
            if self._client is not None or self.mqtt is None:
                return
            client = make_client(self.mqtt, self._client_id)
            client.on_connect = self._on_connect
            client.on_subscribe = self._on_subscribe
            client.on_message = survive(self._on_message, log)
            connect_async(client, self.mqtt)
            self._client = client

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        assert self.mqtt is not None
        client.subscribe([(alert_filter(self.mqtt.root), 1), (self._probe, 0)])

    def _on_subscribe(self, client: paho.Client, *_: Any) -> None:
        client.publish(self._probe, b"", qos=0)

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        assert self.mqtt is not None
        if msg.topic == self._probe:
            self._synced.set()
            return
        parts = msg.topic[len(alert_filter(self.mqtt.root)) - 1 :].split("/", 2)
        if len(parts) != 3:
            return
        with self._lock:
            if not msg.payload:
                self._alerts.pop(msg.topic, None)  # a resolved alert's retained message, cleared
                return
            try:
                doc = orjson.loads(msg.payload)
                alert = {"rule": parts[1], "site": parts[0], "subject": parts[2], **{k: doc[k] for k in FIELDS}}
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.warning("ignored a malformed alert on %s", msg.topic[:200])
                return
            self._alerts[msg.topic] = alert
