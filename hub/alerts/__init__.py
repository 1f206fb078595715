"""Alerts: threshold rules and the built-in ones (stale, offline), judged as points are stored, sent to
Alertmanager, a webhook and MQTT. `open_engine` builds the engine for a hub's config."""

from __future__ import annotations

import paho.mqtt.client as paho

from hub.alerts.config import AlertsConfig
from hub.alerts.engine import AlertEngine
from hub.alerts.notifiers import Notifier
from hub.alerts.notifiers.alertmanager import Alertmanager
from hub.alerts.notifiers.mqtt import AlertSensors, MqttAlerts
from hub.alerts.notifiers.webhook import Webhook
from telemetry.metrics import Metrics

__all__ = ["AlertEngine", "AlertsConfig", "open_engine"]


def open_engine(cfg: AlertsConfig, metrics: Metrics, client: paho.Client, root: str,
                sensors: AlertSensors | None = None) -> AlertEngine:
    """`sensors`: Home Assistant's discovery, when it is on (each alert a problem binary sensor)."""
    notifiers: list[Notifier] = [MqttAlerts(client, root, sensors)]
    if cfg.alertmanager_url:
        notifiers.append(Alertmanager(cfg.alertmanager_url))
    if cfg.webhook_url:
        notifiers.append(Webhook(cfg.webhook_url))
    return AlertEngine(cfg, metrics, notifiers)
