"""One retained topic per alert, `{root}/alert/{site}/{rule}/{subject}` (SPEC.md section 2), on the hub's own MQTT
connection: for Home Assistant, Node-RED and scripts. A resolution is published once, retained, then the retained
message is cleared, so a subscriber that comes later sees only what fires."""

from __future__ import annotations

from typing import Protocol

import orjson
import paho.mqtt.client as paho

from hub.alerts.notifiers.base import NotifyError
from hub.alerts.state import FIRING, RESOLVED
from telemetry.topics import alert_topic

PUBLISH_TIMEOUT_S = 10.0


class AlertSensors(Protocol):
    """Home Assistant's discovery (`hub.home_assistant`): a problem binary sensor per alert."""

    def alert_fired(self, site: str, rule: str, subject: str) -> None: ...


class MqttAlerts:
    name = "mqtt"

    def __init__(self, client: paho.Client, root: str, sensors: AlertSensors | None = None) -> None:
        self.client, self.root, self.sensors = client, root, sensors

    def deliver(self, alerts: list[dict[str, object]]) -> None:
        if not self.client.is_connected():
            raise NotifyError("not connected to the broker")
        infos = []
        for alert in alerts:
            site, rule, subject = str(alert["site"]), str(alert["rule"]), str(alert["subject"])
            topic = alert_topic(self.root, site, rule, subject)
            if self.sensors is not None and alert["state"] == FIRING:
                self.sensors.alert_fired(site, rule, subject)  # its config before its first state
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
