"""The cost of alerts (issue 21), against the real Mosquitto, InfluxDB and Alertmanager:

- `alerts_hub_cpu_us_per_pt_none` / `_rules`: the hub's CPU time (user + system, from /proc) per point stored while
  10,000 series (400 PDUs of 24 outlets and a total) send one point each per message, as live agents do: once with
  every alert switched off (no engine at all), once with 100 threshold rules (one per PDU, none breached) and the
  built-in rules on; two of each, alternated, averaged. `alerts_cpu_ratio` is the second over the first, measured
  in the same run (goal: under 1.10).
- `alerts_observe_us_per_pt`: the same evaluation measured alone (`AlertEngine.observe` in this process, the
  100 rules and the built-in ones, 10,000 series), and `alerts_observe_share_of_hub_cpu` that over the hub's CPU
  per point without alerts: the whole-hub ratio above is within its run-to-run noise, this one is not.
- `alerts_delay_p50_ms` / `_p99_ms`: from a breaching point published to its alert held by Alertmanager
  (`/api/v2/alerts`, polled every 50 ms), for 40 alerts one after the other while the 10,000 series keep sending
  (goal: p99 under 10 s).
- `hub_stop_s_10k_series`: the longest of those hubs' stops (SIGTERM to exit), which flush every series' rollup.

    .venv/bin/python -m bench.alerts [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import tomllib
from collections import deque
from pathlib import Path

import paho.mqtt.client as paho

from bench.hub import BenchHub, influx_and_broker, run_hub, steady_rate
from bench.proc import p99
from bench.series_list import site_keys
from telemetry import Point, SeriesKey, encode_points
from telemetry.config import MqttConfig, Section
from telemetry.mqtt import close, connect_async, make_client
from telemetry.timeunits import now_ms
from tests.peers import Alertmanager, InfluxDB, Mosquitto, Receiver, wait_for

SERIES = 10_000
RULES = 100
DELAYS = 40
PAIRS = 2  # runs without and with rules
WINDOW = 5000  # messages in flight from the load's publisher
STOP_TIMEOUT_S = 600.0  # a hub of 10,000 series flushes every series' rollup minute as it stops
LIMIT_W = 10_000.0
OFF = "".join(f"[alerts.{name}]\nenabled = false\n" for name in ("stale", "offline", "gaps", "capacity"))


def rules_config(state_file: Path, alertmanager_url: str) -> str:
    rules = "".join(f'[[alerts.rules]]\nname = "pdu-{i:03d}-hot"\nseries = "dc.pdu-{i:03d}.*"\nabove = {LIMIT_W}\n'
                    for i in range(1, RULES + 1))
    return f'[alerts]\nalertmanager_url = "{alertmanager_url}"\nstate_file = "{state_file}"\n{rules}'


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Load:
    """One point per series per round, one point a message (QoS 1), from paho in this process."""

    def __init__(self, broker: Mosquitto, keys: list[SeriesKey]) -> None:
        self.keys, self.seq = keys, 0
        self.cfg = MqttConfig.parse(Section({"url": f"mqtt://127.0.0.1:{broker.port}"}, "mqtt"))
        self.client = make_client(self.cfg, f"bench-alerts-{id(self):x}")
        self.client.max_inflight_messages_set(1000)
        connect_async(self.client, self.cfg)
        wait_for(self.client.is_connected, 10, "the load's publisher")
        self.stop = threading.Event()
        self.lock = threading.Lock()  # the seq, for the breaches sent beside the background rounds

    def send(self, key: SeriesKey, watts: float) -> paho.MQTTMessageInfo:
        with self.lock:
            self.seq += 1
            seq = self.seq
        return self.client.publish(f"powerhub/data/{key.site}/{key.device}/{key.channel}",
                                   encode_points([Point(key, now_ms(), seq, {"w": watts, "a": watts / 230})]), qos=1)

    def rounds(self, n: int, pause_s: float = 0.0) -> None:
        # At most WINDOW unacknowledged, as an agent's publisher keeps it: paho's message ids wrap at 65,535, and
        # a queue longer than that loses messages whose ids were reused.
        sent: deque[paho.MQTTMessageInfo] = deque()
        for _ in range(n):
            for key in self.keys:
                if self.stop.is_set():
                    return
                sent.append(self.send(key, 100.0))
                if len(sent) > WINDOW:
                    sent.popleft().wait_for_publish(60)
            if pause_s and self.stop.wait(pause_s):
                return

    def close(self) -> None:
        self.stop.set()
        close(self.client)


STOPS_S: list[float] = []  # how long each hub of the CPU runs took to stop (it flushes its formulas)


def cpu_per_point(work: Path, broker: Mosquitto, url: str, name: str, extra: str, rounds: int) -> float:
    """µs of hub CPU per point stored, from its first stored point to the last of `rounds` rounds."""
    hub = run_hub(work, broker, url, f"bench-alerts-{name}", extra=extra)
    load = Load(broker, site_keys(SERIES))
    try:
        n = rounds * SERIES
        publisher = threading.Thread(target=load.rounds, args=(rounds,), name="bench-load")
        publisher.start()
        first = wait_for(lambda: (c := hub.stored()) and (c, cpu_s(hub.proc.pid)), 60, "a first stored point")
        steady_rate(hub.stored, n, f"{n} points stored ({name})")
        publisher.join(600)
        return (cpu_s(hub.proc.pid) - first[1]) / (n - first[0]) * 1e6
    finally:
        load.close()
        STOPS_S.append(hub.stop(STOP_TIMEOUT_S))


def observe_us_per_pt(work: Path, rounds: int) -> float:
    """The engine alone, in this process: µs of CPU per point that `AlertEngine.observe` takes (it runs in the
    hub's writer threads right after each stored batch) with the 100 rules and the built-in ones, in batches of
    500 as the writers hand them over."""
    from hub.alerts import AlertsConfig
    from hub.alerts.engine import AlertEngine
    from telemetry.metrics import Metrics

    doc = tomllib.loads(rules_config(work / "observe.sqlite", "http://127.0.0.1:9"))
    engine = AlertEngine(AlertsConfig.parse(Section(doc, "")), Metrics(), [])
    keys, t0 = site_keys(SERIES), now_ms()
    batches = [[Point(k, t0 + r * 1000, r + 1, {"w": 100.0, "a": 0.4}) for k in keys[i:i + 500]]
               for r in range(rounds) for i in range(0, len(keys), 500)]
    start = time.process_time()
    for batch in batches:
        engine.observe(batch)
    used = time.process_time() - start
    engine.db.close()
    return used / (rounds * SERIES) * 1e6


def delays_ms(hub: BenchHub, am: Alertmanager, load: Load) -> list[float]:
    """Each breach from its publishing to Alertmanager holding it, one PDU's rule after another."""
    out = []
    for i in range(1, DELAYS + 1):
        key = SeriesKey("dc", f"pdu-{i:03d}", "outlet-1")
        t0 = time.perf_counter()
        load.send(key, LIMIT_W * 2)

        def held(subject: str = key.id) -> bool:
            return any(a["labels"].get("subject") == subject for a in am.alerts())

        wait_for(held, 60, f"the alert of {key.id} at Alertmanager")
        out.append((time.perf_counter() - t0) * 1000)
    return out


def alert_figures(work: Path, broker: Mosquitto, influx: InfluxDB, rounds: int = 10) -> dict[str, float]:
    receiver = Receiver()
    am = Alertmanager(work, receiver.url)
    am.start()
    try:
        base = f"influxdb://127.0.0.1:{influx.port}"
        cfg = rules_config(work / "alerts.sqlite", am.url)
        runs: dict[str, list[float]] = {"none": [], "rules": []}
        for i in range(PAIRS):  # alternated, so that a drift of the machine's speed weighs on both alike
            for name, extra in (("none", OFF), ("rules", cfg.replace("alerts.sqlite", f"alerts-{i}.sqlite"))):
                runs[name].append(cpu_per_point(work, broker, f"{base}/alerts_{name}_{i}", f"{name}-{i}", extra,
                                                rounds))
        none, rules = (sum(runs[k]) / PAIRS for k in ("none", "rules"))
        hub = run_hub(work, broker, f"{base}/alerts_delay", "bench-alerts-delay", extra=cfg.replace(
            "alerts.sqlite", "alerts-delay.sqlite"))
        # The breached outlets get no other point: one at 100 W would resolve an alert before it is seen.
        breached = {SeriesKey("dc", f"pdu-{i:03d}", "outlet-1") for i in range(1, DELAYS + 1)}
        load = Load(broker, [k for k in site_keys(SERIES) if k not in breached])
        background = threading.Thread(target=load.rounds, args=(1000, 1.0), name="bench-background")
        try:
            background.start()  # about 5,000 points/s beside the breaches: a room of meters keeps sending
            delays = delays_ms(hub, am, load)
        finally:
            load.close()
            background.join(60)
            STOPS_S.append(hub.stop(STOP_TIMEOUT_S))
    finally:
        am.stop()
        receiver.stop()
    observe = observe_us_per_pt(work, rounds)
    return {"alerts_hub_cpu_us_per_pt_none": round(none, 1), "alerts_hub_cpu_us_per_pt_rules": round(rules, 1),
            "alerts_cpu_ratio": round(rules / none, 3), "alerts_observe_us_per_pt": round(observe, 2),
            "alerts_observe_share_of_hub_cpu": round(observe / none, 3),
            "alerts_delay_p50_ms": round(sorted(delays)[len(delays) // 2]), "alerts_delay_p99_ms": round(p99(delays)),
            "hub_stop_s_10k_series": round(max(STOPS_S), 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    with influx_and_broker("powerhub-bench-alerts-") as (work, influx, broker):
        figures = alert_figures(work, broker, influx, args.rounds)
    for name, value in figures.items():
        print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
