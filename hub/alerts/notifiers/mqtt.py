"""One retained topic per alert, `{root}/alert/{site}/{rule}/{subject}` (SPEC.md section 2), on the hub's own MQTT
connection: for Home Assistant, Node-RED and scripts. A resolution is published once, retained, then the retained
message is cleared, so a subscriber that comes later sees only what fires."""

from __future__ import annotations

import orjson
import paho.mqtt.client as paho

from hub.alerts.notifiers.base import NotifyError
from hub.alerts.state import RESOLVED
from telemetry.topics import alert_topic

PUBLISH_TIMEOUT_S = 10.0


class MqttAlerts:
    name = "mqtt"

    def __init__(self, client: paho.Client, root: str) -> None:
        self.client, self.root = client, root

    def deliver(self, alerts: list[dict[str, object]]) -> None:
        if not self.client.is_connected():
            raise NotifyError("not connected to the broker")
        infos = []
        for alert in alerts:
            topic = alert_topic(self.root, str(alert["site"]), str(alert["rule"]), str(alert["subject"]))
            payload = {k: alert[k] for k in ("state", "since", "ts", "severity", "summary", "value", "limit")}
            infos.append(self.client.publish(topic, orjson.dumps(payload), qos=1, retain=True))
            if alert["state"] == RESOLVED:
                infos.append(self.client.publish(topic, b"", qos=1, retain=True))
        for info in infos:
            try:
                info.wait_for_publish(PUBLISH_TIMEOUT_S)
            except (RuntimeError, ValueError) as exc:
                raise NotifyError(str(exc)) from None
            if not info.is_published():
                raise NotifyError("the broker did not acknowledge an alert in time")

    def refresh(self, firing: list[dict[str, object]]) -> None:
        """Retained at the broker already."""
