"""Live figures: N concurrent SSE clients on one `powerhub web` process (the real command, its real server), points
published to the real Mosquitto at a steady rate, publish-to-delivery latency per event at every client.

    .venv/bin/python -m bench.sse --clients 1000 --rate-hz 10 --seconds 30     (alone: starts its own Mosquitto)

The clients run in a process of their own (asyncio, raw HTTP), so neither the publisher nor the clients share a GIL
with the server. Latency = the client's clock on reading the event minus the point's `ts` (stamped at publish).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.proc import p99, rss_mb
from telemetry import Point, SeriesKey, encode_points
from telemetry.config import MqttConfig, Section
from telemetry.mqtt import connect_async, make_client
from tests.peers import Mosquitto, free_port, wait_for, wait_port

ROOT = "benchsse"


async def _client(host: str, port: int, path: str, latencies: list[float], connected: list[int],
                  stop_at: float) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    connected_seen = False
    buf = b""
    try:
        while time.time() < stop_at:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), timeout=max(0.1, stop_at - time.time()))
            except TimeoutError:
                break
            if not chunk:
                break
            now_ms = time.time() * 1000
            buf += chunk
            if not connected_seen and b": connected" in buf:
                connected.append(1)
                connected_seen = True
            # Whole events only; `id: {ts}-{seq}` carries the publish stamp.
            end = buf.rfind(b"\n\n")
            if end < 0:
                continue
            events, buf = buf[: end + 2], buf[end + 2 :]
            for part in events.split(b"\nid: ")[1:]:
                latencies.append(now_ms - int(part.split(b"-", 1)[0]))
    finally:
        writer.close()


async def _clients(url_host: str, port: int, n: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    connected: list[int] = []
    stop_at = time.time() + seconds
    path = f"/api/v1/stream?series={ROOT}.meter.power"
    tasks = []
    for _ in range(n):
        tasks.append(asyncio.create_task(_client(url_host, port, path, latencies, connected, stop_at)))
        await asyncio.sleep(0.002)  # a ramp, not a SYN flood of the listen backlog
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = sum(1 for r in results if isinstance(r, BaseException))
    latencies.sort()
    return {"connected": len(connected), "errors": errors, "events": len(latencies), "p99_ms": p99(latencies),
            "p50_ms": latencies[len(latencies) // 2] if latencies else float("nan")}


def clients_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    args = ap.parse_args(argv)
    print(json.dumps(asyncio.run(_clients("127.0.0.1", args.port, args.clients, args.seconds))))
    return 0


def _publisher(broker_port: int, rate_hz: float, stop: threading.Event) -> int:
    cfg = MqttConfig.parse(Section({"url": f"mqtt://127.0.0.1:{broker_port}", "root": ROOT}, "mqtt"))
    client = make_client(cfg, "bench-sse-publisher")
    connect_async(client, cfg)
    wait_for(client.is_connected, 10, "the publisher")
    key = SeriesKey(ROOT, "meter", "power")
    sent, seq = 0, 0
    next_at = time.monotonic()
    while not stop.is_set():
        seq += 1
        point = Point(key, time.time_ns() // 1_000_000, seq, {"w": 1000.0 + seq % 100})
        client.publish(f"{ROOT}/data/{ROOT}/meter/power", encode_points([point]), qos=1)
        sent += 1
        next_at += 1 / rate_hz
        stop.wait(max(0.0, next_at - time.monotonic()))
    client.disconnect()
    client.loop_stop()
    return sent


# `powerhub web` as the console script runs it (gevent), and the same app called as a function, which keeps werkzeug's
# threaded server (powerhub_cli.main patches only when run as a program): the reference beside it.
SERVERS = {
    "gevent": [sys.executable, "-m", "powerhub_cli", "web"],
    "threads": [sys.executable, "-c", "import sys, powerhub_cli; sys.exit(powerhub_cli.main(sys.argv[1:]))", "web"],
}


def sse_figures(work: Path, broker: Mosquitto, clients: int = 1000, rate_hz: float = 10.0,
                seconds: float = 30.0, server: str = "gevent") -> dict[str, float]:
    web_port = free_port()
    config = work / "web-sse.toml"
    config.write_text(f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\nroot = "{ROOT}"\n'
                      f'[store]\nurl = "sqlite:///{work}/sse.sqlite"\n[web]\nlisten = "127.0.0.1:{web_port}"\n')
    web = subprocess.Popen([*SERVERS[server], "--config", str(config)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(web_port, 30)
        ramp_s = clients * 0.002 + 2.0
        load = subprocess.Popen([sys.executable, "-m", "bench.sse", "clients", "--port", str(web_port),
                                 "--clients", str(clients), "--seconds", str(seconds + ramp_s)],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(ramp_s)  # every client connected before the first point: each sees the same ones
        stop = threading.Event()
        result: list[int] = []
        pub = threading.Thread(target=lambda: result.append(_publisher(broker.port, rate_hz, stop)))
        pub.start()
        out, _ = load.communicate(timeout=seconds + ramp_s + 120)
        stop.set()
        pub.join(30)
        stats = json.loads(out)
        rss = round(rss_mb(web.pid), 1)
    finally:
        web.terminate()
        web.wait(30)
    served = stats["connected"] if stats["errors"] == 0 else stats["connected"] - stats["errors"]
    if server != "gevent":
        return {f"sse_p99_ms_{server}": round(stats["p99_ms"], 1), f"sse_clients_{server}": served}
    return {"sse_clients": served, "sse_p99_ms": round(stats["p99_ms"], 1), "sse_p50_ms": round(stats["p50_ms"], 1),
            "sse_events_delivered": stats["events"], "sse_points_published": result[0] if result else 0,
            "sse_web_rss_mb": rss}


def main(argv: list[str]) -> int:
    if argv[:1] == ["clients"]:
        return clients_main(argv[1:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rate-hz", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--server", choices=sorted(SERVERS), default="gevent")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="powerhub-bench-sse-"))
    broker = Mosquitto(work)
    broker.start()
    try:
        figures = sse_figures(work, broker, args.clients, args.rate_hz, args.seconds, args.server)
    finally:
        broker.stop()
    for name, value in figures.items():
        print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
