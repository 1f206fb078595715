"""`powerhub hub`: the subscriber on the configured store until stopped, and its HTTP endpoint if configured."""

from __future__ import annotations

import gc
import logging
import threading

from hub.agents import AgentBook
from hub.config import HubConfig
from hub.formulas import FormulaRunner
from hub.http import HubHttp
from hub.stores import open_store
from hub.subscriber import Subscriber
from telemetry.config import redact_url
from telemetry.metrics import Metrics
from telemetry.sdnotify import serve_until

log = logging.getLogger(__name__)

# The hub makes a few objects per point it stores (thousands per batch), nearly none of them in cycles. At Python's
# default threshold (700) the collector ran every few hundred points and re-scanned everything that outlived a batch:
# a quarter of the hub's CPU at 100,000 points/s (make bench, ingest_batched). What start-up made is frozen too.
GC_THRESHOLDS = (10_000, 10, 10)


def tune_gc() -> None:
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def start_hub(cfg: HubConfig, metrics: Metrics, agents: AgentBook | None = None) -> Subscriber:
    store = open_store(cfg.store.url, cfg.store.token)
    formulas = FormulaRunner(store, cfg.formulas, metrics) if cfg.formulas else None
    ha = (cfg.home_assistant.prefix, cfg.home_assistant.every_s) if cfg.home_assistant else None
    sub = Subscriber(cfg.mqtt, store, metrics, cfg.client_id, cfg.share_group, cfg.batch_points, cfg.batch_age_s,
                     agents=agents, formulas=formulas, home_assistant=ha, alerts=cfg.alerts)
    sub.start()
    log.info("hub %s subscribing at %s:%d, storing to %s", cfg.client_id, cfg.mqtt.host, cfg.mqtt.port,
             redact_url(cfg.store.url))
    return sub


def run(cfg: HubConfig, stop: threading.Event) -> None:
    metrics = Metrics()
    sub = start_hub(cfg, metrics)
    http = HubHttp(*cfg.listen, metrics, sub.agents, sub.alerts) if cfg.listen else None
    if http:
        http.start()
    tune_gc()
    serve_until(stop, sub.healthy)
    if http:
        http.stop()
    sub.stop()
    sub.store.close()
