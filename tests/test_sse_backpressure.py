"""An SSE client that stops reading is dropped once its bounded queue fills; the server buffers nothing more for it
and keeps serving others."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from telemetry import Point, SeriesKey
from telemetry.metrics import Metrics
from tests.peers import wait_for
from web import create_app, state
from web.live import LISTENER_QUEUE_POINTS
from web.server import WebServer

pytestmark = pytest.mark.peers  # starts real programs of its own: `make test` only

KEY = SeriesKey("lab", "mainmeter", "power")
T0 = 1_700_000_000_000


def test_a_client_that_stops_reading_is_dropped(mqtt_doc: dict[str, Any], tmp_path: Path) -> None:
    metrics = Metrics()
    app = create_app({"mqtt": mqtt_doc, "store": {"url": f"sqlite:///{tmp_path}/p.sqlite"},
                      "web": {"listen": "127.0.0.1:0"}}, metrics)
    server = WebServer(app)
    server.start()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        with app.app_context():
            live = state().live
        stalled.connect(("127.0.0.1", server.port))
        stalled.sendall(f"GET /api/v1/stream?series={KEY.id} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_for(lambda: live.clients == 1, what="the stream to listen")
        fed = 0
        while live.clients and fed < 20 * LISTENER_QUEUE_POINTS:  # the client reads none of it
            live.feed([Point(KEY, T0 + fed + i, fed + i, {"w": 100.0, "ms": 36000}) for i in range(1000)])
            fed += 1000
        assert live.clients == 0, "the stalled client was never dropped"
        assert fed <= 2 * LISTENER_QUEUE_POINTS  # dropped once its queue (and the socket buffers) filled
        wait_for(lambda: metrics.value("powerhub_sse_dropped_total") == 1, 60, "the stream's thread to end")
        assert requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).json()["sse_clients"] == 0
    finally:
        stalled.close()
        server.stop()
