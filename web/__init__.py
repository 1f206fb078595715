"""The web app: dashboard, history API, live stream, blipserver-compatible routes. Built by `create_app`."""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass, field
from typing import Any, cast

from flask import Flask, current_app, request

from hub.config import StoreConfig
from hub.stores import Store, open_store
from telemetry.config import MqttConfig, Section
from telemetry.metrics import Metrics
from web.config import WebConfig
from web.live import LiveFeed

KNOWN_SERIES_TTL_S = 5.0


@dataclass
class WebState:
    """What one app instance owns: config, its store client, the live feed, metrics."""

    config: WebConfig
    store_config: StoreConfig
    live: LiveFeed
    metrics: Metrics
    _store: Store | None = None
    _known: tuple[float, frozenset[str]] = (0.0, frozenset())
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
            ids = frozenset(info.key.id for info in self.store.series())
            self._known = (time.monotonic(), ids)
        return ids


def state() -> WebState:
    return cast(WebState, current_app.extensions["powerhub"])


def _check_allowlist() -> None:
    """`web.allow`: answer 403 to clients outside it (the socket's address; proxy headers are not trusted yet)."""
    from web.errors import abort_json

    allow = state().config.allow
    try:
        addr = ipaddress.ip_address((request.remote_addr or "").split("%")[0])
    except ValueError:
        abort_json(403, "client address not allowed")
    if not any(addr in net for net in allow):
        abort_json(403, "client address not allowed")


def create_app(doc: dict[str, Any] | None = None, metrics: Metrics | None = None) -> Flask:
    """Build the app from a config document (the parsed TOML: `web`, `store`, `mqtt` sections)."""
    doc = doc or {}
    top = Section(doc, "")
    web_cfg = WebConfig.parse(top.table("web"))
    store_cfg = StoreConfig.parse(top.table("store"))
    mqtt_cfg = MqttConfig.parse(top.table("mqtt")) if web_cfg.live else None

    from web import api, blip, dashboard, errors, export, stream

    app = Flask(__name__, static_url_path=f"{web_cfg.url_prefix}/static")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["powerhub"] = WebState(web_cfg, store_cfg, LiveFeed(mqtt_cfg), metrics or Metrics())
    errors.install(app)
    app.before_request(_check_allowlist)
    for module in (api, stream, export, blip, dashboard):
        app.register_blueprint(module.bp, url_prefix=web_cfg.url_prefix or None)
    return app
