"""The whole blipserver path, for real: blink lines on a pty -> agent -> Mosquitto -> hub -> each store -> web.

Everything is read back over HTTP from a running web server, the way blipserver's front ends read it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from hub.config import HubConfig
from hub.run import start_hub
from hub.subscriber import Subscriber
from telemetry.metrics import Metrics
from tests.peers import Pty, wait_for
from web import create_app
from web.server import WebServer

pytestmark = pytest.mark.peers  # starts real programs of its own: `make test` only

SERIES = "lab.mainmeter.power"


@dataclass
class System:
    agent: Agent
    hub: Subscriber
    web: WebServer
    pty: Pty
    metrics: Metrics

    def get(self, path: str, **kwargs: Any) -> Any:
        resp = requests.get(self.web.url.rstrip("/") + path, timeout=10, **kwargs)
        assert resp.status_code == 200, (path, resp.status_code, resp.text)
        return resp.json()

    def blink(self, ms: int) -> tuple[int, int]:
        """Write one blink line; return the wall-clock window in which the agent must have stamped it."""
        assert self.agent.outbox is not None
        outbox = self.agent.outbox
        previous = outbox.last_ts.get(SERIES, 0)
        before = time.time_ns() // 1_000_000
        self.pty.write(f"{ms}\r\n")
        # Waiting for a stamp >= `before` is not enough: the previous blink's may be in the same millisecond, and
        # this one then not stamped yet. Stamps increase strictly, so a new one is greater than the last.
        wait_for(lambda: outbox.last_ts.get(SERIES, 0) > previous, what="the agent to stamp the blink")
        return before, time.time_ns() // 1_000_000


@pytest.fixture
def system(mqtt_doc: dict[str, Any], store_url: str, pty: Pty, tmp_path: Path, mqtt_root: str) -> Iterator[System]:
    doc = {
        "mqtt": mqtt_doc,
        "agent": {"site": "lab", "name": "pi", "outbox": str(tmp_path / "outbox.sqlite"),
                  "readers": [{"kind": "blip_serial", "device": "mainmeter", "port": pty.port, "reopen_s": 0.1}]},
        "hub": {"client_id": f"hub-{mqtt_root}", "batch_age_s": 0.02},
        "store": {"url": store_url},
        "web": {"listen": "127.0.0.1:0", "blip_default": SERIES},
    }
    metrics = Metrics()
    hub = start_hub(HubConfig.parse(doc), metrics)
    wait_for(hub.connected.is_set, what="the hub to connect")
    web = WebServer(create_app(doc, metrics))
    web.start()
    agent = Agent(AgentConfig.parse(doc))
    agent.start()
    wait_for(lambda: agent.counters["serial_opened"] >= 1, what="the agent to open the pty")
    pty.write("123\r\n4567\r\n")  # the two lines every open throws away
    yield System(agent, hub, web, pty, metrics)
    agent.stop()
    web.stop()
    hub.stop()
    hub.store.close()


def test_blinks_reach_every_blipserver_route_and_the_stream(system: System) -> None:
    windows = [system.blink(ms) for ms in (1000, 2000, 500, 1000)]
    wait_for(lambda: system.metrics.value("powerhub_points_stored_total") >= 4, what="4 points stored")

    last = system.get("/last/60000")
    assert [ms for _, ms in last] == [1000, 2000, 500, 1000]
    for (stamp, _), (lo, hi) in zip(last, windows, strict=True):
        assert lo <= stamp <= hi  # the host clock when the line arrived
    assert system.get(f"/last/{SERIES}/60000") == last
    assert system.get("/last") == last[-1]

    stamps = [s for s, _ in last]
    assert system.get(f"/since/{stamps[1]}") == last[2:]
    assert system.get(f"/range/{stamps[1]}/{stamps[2]}") == last[1:3]

    since = stamps[0]
    agg = system.get(f"/aggregate/{since}/3600000/2")
    assert agg == [[0, 4]]

    hour = since - since % 3_600_000
    hourly = system.get(f"/hourly/{hour}/{stamps[-1]}")
    if stamps[-1] - stamps[-1] % 3_600_000 == hour:  # all four blinks in one hour (almost always)
        # 4 blinks of 1 Wh over 4500 ms: 4 Wh / 4.5 s = 3200 W
        assert hourly == [[hour, 4, pytest.approx(3200.0), 500, 2000]]

    series = system.get("/api/v1/series")
    assert series[0]["id"] == SERIES and series[0]["last"] == {"ts": stamps[-1], "w": 3600.0}
    points = system.get(f"/api/v1/series/{SERIES}/points?from={stamps[0]}")
    assert points == [[stamps[0], 3600.0], [stamps[1], 1800.0], [stamps[2], 7200.0], [stamps[3], 3600.0]]


def read_events(resp: requests.Response, n: int, out: list[dict[str, Any]], ids: list[str]) -> None:
    event: dict[str, str] = {}
    for raw in resp.iter_lines(decode_unicode=True):
        if raw == "":
            if event.get("event") == "point":
                out.append(json.loads(event["data"]))
                ids.append(event["id"])
                if len(out) >= n:
                    return
            event = {}
        elif not raw.startswith(":") and ":" in raw:
            name, _, value = raw.partition(":")
            event[name] = value.lstrip()


def test_stream_and_longpoll_see_new_blinks_and_replay_after_last_event_id(system: System) -> None:
    url = system.web.url.rstrip("/")
    events: list[dict[str, Any]] = []
    ids: list[str] = []
    blips: list[Any] = []
    with requests.get(f"{url}/api/v1/stream?series={SERIES}", stream=True, timeout=20) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        reader = threading.Thread(target=read_events, args=(resp, 2, events, ids))
        reader.start()
        poll = threading.Thread(target=lambda: blips.append(requests.get(f"{url}/blip", timeout=20).json()))
        poll.start()
        time.sleep(0.5)  # the stream's listener and the long-poll are waiting
        system.blink(1000)
        system.blink(500)
        reader.join(15)
        poll.join(15)
    assert [e["ms"] for e in events] == [1000, 500]
    assert [e["w"] for e in events] == [3600.0, 7200.0]
    assert all(e["id"] == SERIES for e in events)
    assert ids == [f"{e['ts']}-{e['seq']}" for e in events]
    assert blips == [[events[0]["ts"], 1000]]

    # A client that reconnects with the id of the first event gets the second replayed from the store.
    wait_for(lambda: system.metrics.value("powerhub_points_stored_total") >= 2, what="both points stored")
    replayed: list[dict[str, Any]] = []
    headers = {"Last-Event-ID": ids[0]}
    with requests.get(f"{url}/api/v1/stream?series={SERIES}", headers=headers, stream=True, timeout=20) as resp:
        read_events(resp, 1, replayed, [])
    assert replayed == [events[1]]
