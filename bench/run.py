"""`make bench`: powerhub's figures against the real Mosquitto and InfluxDB, each ratio measured in the same run as its
reference. Prints `name: value` lines and writes bench/results.json.

    .venv/bin/python -m bench.run [--points 200000] [--year-points 3153600]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from bench.alerts import alert_figures
from bench.edge import edge_figures
from bench.hub import influx_and_broker, run_hub, steady_rate
from bench.proc import rss_mb
from bench.series_list import series_list_figures
from bench.sse import sse_figures
from edge_agent.outbox import Outbox
from hub.formulas import FormulaRunner
from hub.formulas.rollup import Rollup
from hub.stores import Store, open_store
from hub.stores.influx import to_line
from telemetry import Point, SeriesKey, encode_points
from telemetry.config import MqttConfig, Section
from telemetry.mqtt import connect_async, make_client
from tests.peers import InfluxDB, Mosquitto, wait_for
from web import create_app
from web.server import WebServer

RESULTS = Path(__file__).parent / "results.json"
T0 = 1_700_000_000_000


class Peak:
    """The peak RSS of a process, sampled in the background."""

    def __init__(self, pid: int) -> None:
        self.pid, self.mb, self._stop = pid, 0.0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.mb = max(self.mb, rss_mb(self.pid))
            except OSError:
                return

    def stop(self) -> float:
        self._stop.set()
        return self.mb


def points(device: str, n: int, step_ms: int = 1000) -> list[Point]:
    key = SeriesKey("bench", device, "power")
    return [Point(key, T0 + i * step_ms, i + 1, {"w": 100.0 + i % 500}) for i in range(n)]


def count_stored(url: str, device: str) -> int:
    store = open_store(url)
    try:
        q = f"SELECT count(w) FROM power WHERE device = '{device}'"
        series = store.query(q)  # type: ignore[attr-defined]
        return int(series[0]["values"][0][1]) if series else 0
    finally:
        store.close()


def influx_raw_pts_per_s(influx: InfluxDB, db: str, pts: list[Point]) -> float:
    """The reference: line protocol straight into InfluxDB, 5000 points a request."""
    base = f"http://127.0.0.1:{influx.port}"
    requests.post(f"{base}/query", params={"q": f'CREATE DATABASE "{db}"'}, timeout=30)
    lines = [to_line(p) for p in pts]
    t0 = time.perf_counter()
    for i in range(0, len(lines), 5000):
        resp = requests.post(f"{base}/write", params={"db": db, "precision": "ms"},
                             data="\n".join(lines[i:i + 5000]).encode(), timeout=60)
        resp.raise_for_status()
    return len(pts) / (time.perf_counter() - t0)


def timed_ingest(work: Path, broker: Mosquitto, url: str, device: str, n: int,
                 publish: Callable[[], None], hubs: int = 1) -> tuple[float, float]:
    """points/s from the first stored batch until the store holds all `n` (the publisher's start-up, a Python
    interpreter's quarter of a second for the agent, is not ingest), and the peak RSS of a hub. Several hubs share
    the subscription (`hub.share_group`)."""
    group = f"bench-{device}" if hubs > 1 else None
    procs = [run_hub(work, broker, url, f"bench-hub-{device}-{i}", group) for i in range(hubs)]
    peaks = [Peak(h.proc.pid) for h in procs]
    publisher = threading.Thread(target=publish, name="bench-publisher")  # timed while it publishes, not after
    try:
        publisher.start()
        rate = steady_rate(lambda: sum(h.stored() for h in procs), n, f"{n} points of {device} stored")
        wait_for(lambda: count_stored(url, device) >= n, 60, f"InfluxDB to hold {n} points of {device}")
        return rate, max(p.stop() for p in peaks)
    finally:
        publisher.join(600)
        for h in procs:
            h.stop()


def batched_publish(work: Path, broker: Mosquitto, pts: list[Point], name: str = "a") -> Callable[[], None]:
    """The agent itself: its outbox holds the points, its publisher sends arrays of up to 500."""
    outbox_path = work / f"bench-outbox-{name}.sqlite"
    outbox = Outbox(outbox_path)
    for p in pts:
        outbox.put(p)
    outbox.close()
    config = work / f"agent-{name}.toml"
    config.write_text(f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\n[agent]\nsite = "bench"\nname = "{name}"\n'
                      f'outbox = "{outbox_path}"\n[[agent.readers]]\nkind = "simulated"\ndevice = "idle"\n'
                      'interval_s = 3600\nmode = "watts"\n')

    def go() -> None:
        proc = subprocess.Popen([sys.executable, "-m", "powerhub_cli", "agent", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        batched_publish.proc = proc  # type: ignore[attr-defined]

    return go


def batched_ingest(work: Path, broker: Mosquitto, url: str, device: str, n: int, hubs: int) -> tuple[float, float]:
    """`timed_ingest` of an agent's outbox of `n` points (arrays of 500), into a database of its own."""
    try:
        return timed_ingest(work, broker, url, device, n, batched_publish(work, broker, points(device, n), device),
                            hubs)
    finally:
        agent: subprocess.Popen[bytes] = batched_publish.proc  # type: ignore[attr-defined]
        agent.send_signal(signal.SIGTERM)
        agent.wait(60)


def single_publish_c(broker: Mosquitto, pts: list[Point]) -> Callable[[], None]:
    """An integration publishing one point per message, QoS 1, as fast as the broker acknowledges: Mosquitto's own
    C client (`mosquitto_pub -l`, 1000 in flight), the issue's reference, so that the figure is the hub's and not a
    Python publisher's competing for the same two cores (that one is `single_publish`)."""
    topic = f"powerhub/data/bench/{pts[0].key.device}/power"
    lines = b"".join(encode_points([p]) + b"\n" for p in pts)

    def go() -> None:
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", "mqttv5", "-q", "1",
                        "-M", "1000", "-t", topic, "-l"], input=lines, check=True, timeout=600)

    return go


def single_publish(broker: Mosquitto, pts: list[Point]) -> Callable[[], None]:
    """The same from Python: paho in this process, as an integration written in Python publishes."""
    cfg = MqttConfig.parse(Section({"url": f"mqtt://127.0.0.1:{broker.port}"}, "mqtt"))

    def go() -> None:
        client = make_client(cfg, "bench-single")
        client.max_inflight_messages_set(1000)
        connect_async(client, cfg)
        wait_for(client.is_connected, 10, "the publisher")
        infos = [client.publish(f"powerhub/data/bench/{p.key.device}/power", encode_points([p]), qos=1) for p in pts]
        for info in infos[-1000:]:
            info.wait_for_publish(120)
        client.disconnect()
        client.loop_stop()

    return go


def history_figures(url: str, n: int, raw_ms_of: Callable[[Store, SeriesKey, int, int, int], None],
                    name: str = "") -> dict[str, float]:
    """A year of 10 s data for one series in the store at `url`, asked for at ~1000 points through the API (which
    answers from the hour rollups), against the same aggregation over the raw points (`raw_ms_of`)."""
    hour = 3_600_000
    base = T0 // hour * hour
    store = open_store(url)
    key = SeriesKey("bench", "year", "power")
    for i in range(0, n, 100_000):
        store.write([Point(key, base + j * 10_000, j + 1, {"w": 100.0 + j % 500})
                     for j in range(i, min(n, i + 100_000))])
    span = -(-n * 10_000 // hour) * hour
    t0 = time.perf_counter()
    FormulaRunner(store, [Rollup()]).replay("rollup", base, base + span)  # as `powerhub formula rollup` does
    build_s = time.perf_counter() - t0
    server = WebServer(create_app({"store": {"url": url}, "web": {"listen": "127.0.0.1:0", "live": False}}))
    server.start()
    try:
        api = (f"http://127.0.0.1:{server.port}/api/v1/series/{key.id}/history?from={base}&to={base + span}"
               "&points=1000")
        requests.get(api, timeout=120).raise_for_status()  # warm
        t0 = time.perf_counter()
        body = requests.get(api, timeout=120).json()
        api_ms = (time.perf_counter() - t0) * 1000
        step = -(-span // 1000 // hour) * hour
        t0 = time.perf_counter()
        raw_ms_of(store, key, base, base + span, step)
        raw_ms = (time.perf_counter() - t0) * 1000
    finally:
        server.stop()
        store.close()
    assert len(body) >= 900, len(body)
    if name:
        return {f"history_{name}_year_ms": round(api_ms, 1),
                f"history_{name}_speedup_vs_raw": round(raw_ms / api_ms, 2),
                f"history_{name}_year_raw_ms": round(raw_ms, 1),
                f"rollup_build_{name}_year_s": round(build_s, 1)}
    return {"history_year_ms": round(api_ms, 1), "history_speedup_vs_influx_raw": round(raw_ms / api_ms, 2),
            "history_year_raw_influxql_ms": round(raw_ms, 1), "rollup_build_year_s": round(build_s, 1)}


def influxql_group_by(store: Store, key: SeriesKey, from_ms: int, to_ms: int, step_ms: int) -> None:
    q = (f"SELECT mean(w), min(w), max(w), count(w) FROM power WHERE device = '{key.device}' AND time >= {from_ms}ms "
         f"AND time < {to_ms}ms GROUP BY time({step_ms}ms) fill(none)")
    store.query(q)  # type: ignore[attr-defined]


def raw_buckets(store: Store, key: SeriesKey, from_ms: int, to_ms: int, step_ms: int) -> None:
    store.buckets(key, from_ms, to_ms, step_ms)  # the store's own GROUP BY over the raw points


def outbox_empty(path: Path) -> bool:
    try:
        return len(Outbox(path)) == 0
    except Exception:  # the agent holds a write lock for a moment
        return False


def hub_backlog(work: Path, broker: Mosquitto, url: str, n: int) -> float:
    """The hub alone, with no agent competing for the cores: `n` points (arrays of 500) wait in its session while it
    is away, then it stores them. points/s from its first stored point to its last."""
    client_id = "bench-hub-backlog"
    run_hub(work, broker, url, client_id).stop()  # its session now exists at the broker, and keeps what comes
    publish = batched_publish(work, broker, points("backlog", n), name="backlog")
    publish()
    agent: subprocess.Popen[bytes] = batched_publish.proc  # type: ignore[attr-defined]
    try:
        wait_for(lambda: outbox_empty(work / "bench-outbox-backlog.sqlite"), 600,
                 "the agent to hand its points to the broker")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(60)
    # Not waited for: a backlog is stored from the hub's first moment, and timed from its first stored batch.
    hub = run_hub(work, broker, url, client_id, wait=False)
    try:
        rate = steady_rate(hub.stored, n, "the backlog stored")
        wait_for(lambda: count_stored(url, "backlog") >= n, 60, "InfluxDB to hold the backlog")
        return rate
    finally:
        hub.stop()


def outbox_drain(work: Path, broker: Mosquitto, n: int) -> float:
    """An agent with `n` points waiting in its outbox and a broker that takes them: points/s until all acked."""
    outbox_path = work / "drain-outbox.sqlite"
    outbox = Outbox(outbox_path)
    for p in points("drain", n):
        outbox.put(p)
    outbox.close()
    config = work / "drain.toml"
    config.write_text(f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\n[agent]\nsite = "bench"\nname = "d"\n'
                      f'outbox = "{outbox_path}"\n[[agent.readers]]\nkind = "simulated"\ndevice = "idle"\n'
                      'interval_s = 3600\nmode = "watts"\n')
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "powerhub_cli", "agent", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: outbox_empty(outbox_path), 600, "the outbox to drain")
        return n / (time.perf_counter() - t0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--single-points", type=int, default=50_000)
    ap.add_argument("--backlog-points", type=int, default=500_000)
    ap.add_argument("--year-points", type=int, default=3_153_600)
    ap.add_argument("--drain-points", type=int, default=1_000_000)
    ap.add_argument("--sse-clients", type=int, default=1000)
    ap.add_argument("--sse-seconds", type=float, default=30.0)
    ap.add_argument("--list-series", type=int, default=10_000)
    args = ap.parse_args()
    results: dict[str, float] = {}
    with influx_and_broker("powerhub-bench-") as (work, influx, broker):
        base = f"influxdb://127.0.0.1:{influx.port}"
        # The reference before and after the runs it is compared with, averaged: InfluxDB's own rate wanders more
        # between minutes (265,000 to 430,000 here) than anything else measured.
        raw_rates = [influx_raw_pts_per_s(influx, "benchraw1", points("raw1", args.points))]
        hub_mbs = []
        for name, hubs in (("batched", 1), ("batched2", 2)):
            rate, hub_mb = batched_ingest(work, broker, f"{base}/bench_{name}", name, args.points, hubs)
            results[f"ingest_{name.replace('batched2', 'batched_2hubs')}_pts_per_s"] = round(rate)
            hub_mbs.append(hub_mb)
        raw_rates.append(influx_raw_pts_per_s(influx, "benchraw2", points("raw2", args.points)))
        raw = sum(raw_rates) / 2
        results["influx_raw_pts_per_s"] = round(raw)
        results["ingest_ratio_vs_influx_raw"] = round(results["ingest_batched_pts_per_s"] / raw, 3)
        results["ingest_ratio_2hubs_vs_influx_raw"] = round(results["ingest_batched_2hubs_pts_per_s"] / raw, 3)
        url = f"{base}/bench"
        # One point per message: (device, publisher, hubs on one shared subscription) for each figure.
        for figure, (device, publisher, hubs) in {
            "ingest_single_pts_per_s": ("single", single_publish_c, 1),
            "ingest_single_2hubs_pts_per_s": ("single2", single_publish_c, 2),
            "ingest_single_paho_pts_per_s": ("singlepaho", single_publish, 1),
        }.items():
            rate_1, mb = timed_ingest(work, broker, url, device, args.single_points,
                                      publisher(broker, points(device, args.single_points)), hubs)
            results[figure] = round(rate_1)
            hub_mbs.append(mb)
        results["hub_rss_mb"] = round(max(hub_mbs), 1)
        results["ingest_backlog_pts_per_s"] = round(hub_backlog(work, broker, url, args.backlog_points))
        results["outbox_drain_pts_per_s"] = round(outbox_drain(work, broker, args.drain_points))
        results.update(history_figures(f"influxdb://127.0.0.1:{influx.port}/benchyear", args.year_points,
                                       influxql_group_by))
        results.update(history_figures(f"sqlite:///{work}/year.sqlite", args.year_points, raw_buckets, "sqlite"))
        results.update(series_list_figures(work, influx, args.list_series))
        results.update(edge_figures(work, broker))
        results.update(alert_figures(work, broker, influx))
        results.update(sse_figures(work, broker, args.sse_clients, 10.0, args.sse_seconds))
        results.update(sse_figures(work, broker, args.sse_clients, 10.0, args.sse_seconds, "threads"))
    for name, value in results.items():
        print(f"{name}: {value}")
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
