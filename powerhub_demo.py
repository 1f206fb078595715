"""`powerhub demo`: broker (embedded amqtt unless `[mqtt]` names one), simulated meters, hub on SQLite, web.

Everything runs in this process and stops cleanly on Ctrl-C. amqtt speaks MQTT 3.1.1 only, and gives persistent
sessions only to clients with a username, so the demo's clients use 3.1.1 and the username "demo".
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from hub.agents import AgentBook
from hub.config import HubConfig
from hub.run import start_hub
from hub.subscriber import Subscriber
from telemetry.errors import UsageError
from telemetry.metrics import Metrics
from web import HubUnavailable, create_app
from web.server import WebServer

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """amqtt on loopback in its own thread and event loop."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="amqtt", daemon=True)
        self._broker: Any = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        from amqtt.broker import Broker

        asyncio.set_event_loop(self._loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
        }
        try:
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> None:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"embedded MQTT broker failed to start: {self._error}")
        log.info("embedded MQTT broker (amqtt) on 127.0.0.1:%d", self.port)

    def stop(self) -> None:
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)


def demo_config(doc: dict[str, Any], var: Path, mqtt_port: int | None, web_port: int) -> dict[str, Any]:
    """The demo's config: what the user's file gives, the rest filled in for one simulated site."""
    mqtt = doc.get("mqtt") or {"url": f"mqtt://127.0.0.1:{mqtt_port}", "protocol": "3.1.1", "username": "demo"}
    readers = [
        {"kind": "simulated", "device": "house", "mode": "blips", "imp_per_kwh": 10000},
        {"kind": "simulated", "device": "rack", "mode": "watts", "interval_s": 1.0, "seed": 7},
    ]
    return {
        "mqtt": mqtt,
        "agent": doc.get("agent") or {"site": "demo", "name": "sim", "outbox": str(var / "outbox.sqlite"),
                                      "readers": readers},
        "hub": doc.get("hub") or {"client_id": "powerhub-demo-hub"},
        "store": doc.get("store") or {"url": f"sqlite:///{(var / 'points.sqlite').resolve()}"},
        "web": doc.get("web") or {"listen": f"127.0.0.1:{web_port}", "blip_default": "demo.house.power",
                                  "price_per_kwh": 0.30, "currency": "EUR"},
        # The formulas on the simulated site: the rack as a machine, energy per hour and day, and what the house
        # meter sees that the rack's meter does not.
        "inventory": doc.get("inventory") or {
            "machines": [{"name": "rack", "site": "demo", "sources": ["rack.power"]}]},
        "formulas": doc.get("formulas") or {
            "enabled": ["rollup", "machine_power", "reconcile", "energy"],
            "machine_power": {"step_s": 10}, "reconcile": {"main": {"demo": "house.power"}, "step_s": 10}},
    }


def check_port_free(port: int) -> None:
    """Before anything starts: a taken port would otherwise show only as a traceback from deep in the web server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UsageError(f"port {port} on 127.0.0.1 is taken ({exc.strerror}): stop what listens there, or "
                             f"choose another, `make demo PORT=8090` or `powerhub demo --port 8090`") from None


def run_demo(doc: dict[str, Any], web_port: int, var_dir: str, stop: threading.Event) -> None:
    if not doc.get("web"):
        check_port_free(web_port)
    var = Path(var_dir)
    var.mkdir(parents=True, exist_ok=True)
    broker = None if doc.get("mqtt") else EmbeddedBroker(free_port())
    cfg = demo_config(doc, var, broker.port if broker else None, web_port)
    agent_cfg, hub_cfg = AgentConfig.parse(cfg), HubConfig.parse(cfg)  # config errors before anything starts
    metrics = Metrics()
    agents = AgentBook(metrics)
    hubs: list[Subscriber] = []  # the hub starts after the app: its history of alerts is looked up when asked

    def alert_history(subject: str | None, limit: int) -> list[dict[str, Any]]:
        engine = hubs[0].alerts if hubs else None
        if engine is None:
            raise HubUnavailable("the demo's hub judges no alerts")
        return engine.history(subject, limit)

    app = create_app(cfg, metrics, agents.snapshot, alert_history)
    web = WebServer(app)
    if broker:
        broker.start()
    hub = start_hub(hub_cfg, metrics, agents)
    hubs.append(hub)
    agent = Agent(agent_cfg)
    agent.start()
    web.start()
    print(f"powerhub demo: dashboard on {web.url} (Ctrl-C stops)", flush=True)
    try:
        stop.wait()
    finally:
        log.info("stopping demo")
        web.stop()
        agent.stop()
        hub.stop()
        if broker:
            broker.stop()
        os.sync()
