"""`powerhub hub`: the subscriber on the configured store until stopped."""

from __future__ import annotations

import logging
import threading

from hub.config import HubConfig
from hub.stores import open_store
from hub.subscriber import Subscriber
from telemetry.config import redact_url
from telemetry.metrics import Metrics

log = logging.getLogger(__name__)


def start_hub(cfg: HubConfig, metrics: Metrics) -> Subscriber:
    store = open_store(cfg.store.url, cfg.store.token)
    sub = Subscriber(cfg.mqtt, store, metrics, cfg.client_id, cfg.share_group, cfg.batch_points, cfg.batch_age_s)
    sub.start()
    log.info("hub %s subscribing at %s:%d, storing to %s", cfg.client_id, cfg.mqtt.host, cfg.mqtt.port,
             redact_url(cfg.store.url))
    return sub


def run(cfg: HubConfig, stop: threading.Event) -> None:
    sub = start_hub(cfg, Metrics())
    stop.wait()
    sub.stop()
    sub.store.close()
