"""The web app: dashboard, history API, live stream, blipserver-compatible routes. Built by `create_app`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from flask import Flask, current_app

from hub.config import StoreConfig
from hub.stores import Store, open_store
from telemetry.config import MqttConfig, Section
from telemetry.metrics import Metrics
from web.alerts import AlertBoard
from web.config import WebConfig
from web.live import LiveFeed

log = logging.getLogger(__name__)

KNOWN_SERIES_TTL_S = 5.0
AGENTS_TTL_S = 2.0

AgentsSource = Callable[[], list[dict[str, Any]]]
# (subject or None, limit) -> the hub's history of alerts, newest first; raises HubUnavailable.
AlertHistorySource = Callable[[str | None, int], list[dict[str, Any]]]
HUB_TIMEOUT_S = 2


class HubUnavailable(Exception):
    """The hub's HTTP endpoint (`web.hub_url`) does not answer, or there is none to ask."""


def _hub_list(hub_url: str, path: str, params: dict[str, str | int] | None = None) -> list[dict[str, Any]]:
    """A JSON list from the hub's endpoint (`hub.listen`); raises HubUnavailable."""
    import requests

    try:
        resp = requests.get(hub_url.rstrip("/") + path, params=params, timeout=HUB_TIMEOUT_S)
        resp.raise_for_status()
        body = resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise HubUnavailable(f"the hub at {hub_url} does not answer ({exc})") from None
    return body if isinstance(body, list) else []


def hub_agents(hub_url: str) -> AgentsSource:
    """The agents' state from the hub; an unreachable hub reads as no agents (warned once until it answers)."""
    warned = False

    def fetch() -> list[dict[str, Any]]:
        nonlocal warned
        try:
            body = _hub_list(hub_url, "/api/v1/agents")
        except HubUnavailable as exc:
            if not warned:
                log.warning("%s: series show no agent state", exc)
                warned = True
            return []
        warned = False
        return body

    return fetch


def hub_alert_history(hub_url: str) -> AlertHistorySource:
    """The history of alerts from the hub."""
    def fetch(subject: str | None, limit: int) -> list[dict[str, Any]]:
        params: dict[str, str | int] = {"limit": limit, **({"subject": subject} if subject else {})}
        return _hub_list(hub_url, "/api/v1/alerts/history", params)

    return fetch


@dataclass
class WebState:
    """What one app instance owns: config, its store client, the live feed, metrics."""

    config: WebConfig
    store_config: StoreConfig
    live: LiveFeed
    metrics: Metrics
    alerts: AlertBoard
    agents_source: AgentsSource | None = None
    alert_history: AlertHistorySource | None = None
    _store: Store | None = None
    _known: tuple[float, frozenset[str]] = (0.0, frozenset())
    _agents: tuple[float, list[dict[str, Any]]] = (-AGENTS_TTL_S, [])
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = open_store(self.store_config.url, self.store_config.token)
            return self._store

    def known_series(self, refresh: bool = False) -> frozenset[str]:
        """Series ids in the store, cached briefly: every data route checks ids against it for its 404."""
        at, ids = self._known
        if refresh or time.monotonic() - at > KNOWN_SERIES_TTL_S:
            ids = frozenset(key.id for key in self.store.series_keys())
            self._known = (time.monotonic(), ids)
        return ids


    def agents(self) -> list[dict[str, Any]]:
        """What the hub knows of each agent (online, devices, seq gaps); cached briefly."""
        if self.agents_source is None:
            return []
        at, agents = self._agents
        if time.monotonic() - at > AGENTS_TTL_S:
            agents = self.agents_source()
            self._agents = (time.monotonic(), agents)
        return agents


def state() -> WebState:
    return cast(WebState, current_app.extensions["powerhub"])


def _check_access() -> None:
    from web import auth

    cfg = state().config
    auth.check(cfg.allow, cfg.trusted_proxies, cfg.token_hashes, cfg.url_prefix)


def create_app(doc: dict[str, Any] | None = None, metrics: Metrics | None = None,
               agents: AgentsSource | None = None, alert_history: AlertHistorySource | None = None) -> Flask:
    """Build the app from a config document (the parsed TOML: `web`, `store`, `mqtt` sections). `agents` and
    `alert_history` are the in-process hub's (the demo); otherwise `web.hub_url`, if set, is asked."""
    doc = doc or {}
    top = Section(doc, "")
    web_cfg = WebConfig.parse(top.table("web"))
    store_cfg = StoreConfig.parse(top.table("store"))
    mqtt_cfg = MqttConfig.parse(top.table("mqtt")) if web_cfg.live else None

    from web import api, blip, dashboard, errors, export, openapi, stream

    app = Flask(__name__, static_url_path=f"{web_cfg.url_prefix}/static")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if agents is None and web_cfg.hub_url:
        agents = hub_agents(web_cfg.hub_url)
    if alert_history is None and web_cfg.hub_url:
        alert_history = hub_alert_history(web_cfg.hub_url)
    app.extensions["powerhub"] = WebState(web_cfg, store_cfg, LiveFeed(mqtt_cfg), metrics or Metrics(),
                                          AlertBoard(mqtt_cfg), agents, alert_history)
    errors.install(app)
    app.before_request(_check_access)
    for module in (api, stream, export, blip, dashboard, openapi):
        app.register_blueprint(module.bp, url_prefix=web_cfg.url_prefix or None)
    return app
