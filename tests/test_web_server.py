"""`powerhub web` as the console script runs it: gevent's server in a monkey-patched process (web/server.py). The app's
routes are tested in-process on werkzeug's server elsewhere; here, what only the program does: a live point over SSE
from a real Mosquitto, the token kept out of the access log, many streams at once, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from telemetry import Point, SeriesKey, encode_points
from telemetry.config import MqttConfig
from telemetry.mqtt import connect_async, make_client
from tests.peers import Mosquitto, free_port, wait_for, wait_port
from web.auth import new_token

pytestmark = pytest.mark.peers  # starts real programs of its own: `make test` only

KEY = SeriesKey("lab", "mainmeter", "power")


@pytest.fixture
def web(tmp_path: Path, mosquitto: Mosquitto, mqtt_root: str) -> Iterator[tuple[int, str, Path]]:
    token, hashed = new_token()
    port = free_port()
    config = tmp_path / "web.toml"
    config.write_text(f'[mqtt]\nurl = "{mosquitto.url()}"\nroot = "{mqtt_root}"\n'
                      f'[store]\nurl = "sqlite:///{tmp_path}/p.sqlite"\n'
                      f'[web]\nlisten = "127.0.0.1:{port}"\ntokens = ["{hashed}"]\n')
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "powerhub_cli", "web", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        yield port, token, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    assert proc.returncode == 0, log.read_text()[-2000:]


def publish(mqtt_cfg: MqttConfig, points: list[Point], retain: bool = False) -> None:
    """`retain`: the web app subscribes a moment after its first stream opens, so a point sent once could come
    before; retained, the broker hands it over when the subscription arrives. (An empty retained message clears it.)"""
    client = make_client(mqtt_cfg, "test-web-server-pub")
    connect_async(client, mqtt_cfg)
    wait_for(client.is_connected, what="the publisher")
    payload = encode_points(points) if points else b""
    client.publish(f"{mqtt_cfg.root}/data/lab/mainmeter/power", payload, qos=1, retain=retain).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def open_stream(port: int, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET /api/v1/stream?series={KEY.id}&token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    got = b""
    while marker not in got:
        chunk = sock.recv(65536)
        assert chunk, f"stream closed before {marker!r}: {got!r}"
        got += chunk
    return got


def test_gevent_server_streams_live_points_to_many_clients(web: tuple[int, str, Path], mqtt_cfg: MqttConfig) -> None:
    port, token, log = web
    streams = [open_stream(port, token) for _ in range(200)]
    try:
        for sock in streams:
            read_until(sock, b": connected")
        assert "gevent" in log.read_text()
        ts_ms = int(time.time() * 1000)
        publish(mqtt_cfg, [Point(KEY, ts_ms, 1, {"w": 1234.5, "ms": 2916})], retain=True)
        for sock in streams:
            got = read_until(sock, b"event: point")
            while b"\n\n" not in got.split(b"event: point", 1)[1]:
                got += sock.recv(65536)
            data = json.loads(got.split(b"data: ", 1)[1].split(b"\n", 1)[0])
            assert data["id"] == KEY.id and data["ts"] == ts_ms and data["w"] == 1234.5
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["sse_clients"] == 200
    finally:
        publish(mqtt_cfg, [], retain=True)
        for sock in streams:
            sock.close()
    # A stream is logged when it ends: the next point's write finds the sockets closed.
    publish(mqtt_cfg, [Point(KEY, ts_ms + 1000, 2, {"w": 1000.0, "ms": 3600})])
    wait_for(lambda: log.read_text().count("GET /api/v1/stream?") == 200, 30, "the streams' access log lines")
    text = log.read_text()
    assert text.count("&token=***") == 200 and token not in text


def test_gevent_server_refuses_without_token_and_stops_on_sigterm(web: tuple[int, str, Path]) -> None:
    port, _token, _log = web
    resp = requests.get(f"http://127.0.0.1:{port}/api/v1/series", timeout=5)
    assert resp.status_code == 401 and resp.json()["error"]
