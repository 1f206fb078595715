"""A `powerhub hub` process for the benchmarks, how fast it stores, and the real peers it stores through."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.peers import InfluxDB, Mosquitto, free_port, wait_for


@dataclass
class BenchHub:
    """A `powerhub hub` process and its metrics port: the bench asks the hub how many points it has stored, since
    asking InfluxDB (a count over the growing series, 50 ms at 400,000 points, every 50 ms) would take InfluxDB's
    CPU from the run being measured. The store is asked once, at the end."""

    proc: subprocess.Popen[bytes]
    port: int

    def stored(self) -> int:
        """`powerhub_points_stored_total`: points the store accepted (0 while the hub is not up yet)."""
        try:
            text = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10).text
        except requests.ConnectionError:
            return 0
        for line in text.splitlines():
            if line.startswith("powerhub_points_stored_total "):
                return int(float(line.split()[1]))
        return 0

    def stop(self, timeout_s: float = 60) -> float:
        """SIGTERM, as systemd stops it; the seconds it took to exit."""
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout_s)
        return time.perf_counter() - t0


def steady_rate(stored: Callable[[], int], n: int, what: str) -> float:
    """points/s from the first time `stored()` counts any (its first batch) until it counts `n`. Polled every 50 ms:
    the end is seen up to 50 ms late, so the figure errs low."""
    first = wait_for(lambda: (c := stored()) and (c, time.perf_counter()), 60, "a first stored point")
    last = wait_for(lambda: stored() >= n and time.perf_counter(), 600, what)
    return (n - first[0]) / (last - first[1])


def run_hub(work: Path, broker: Mosquitto, url: str, client_id: str,
            share_group: str | None = None, wait: bool = True, extra: str = "") -> BenchHub:
    """`powerhub hub`; with `wait`, returns once it has subscribed (and half a second more). `extra`: more of its
    config (TOML tables after `[store]`)."""
    config = work / f"{client_id}.toml"
    share = f'share_group = "{share_group}"\n' if share_group else ""
    port = free_port()
    config.write_text(f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\n[hub]\nclient_id = "{client_id}"\n{share}'
                      f'listen = "127.0.0.1:{port}"\n[store]\nurl = "{url}"\n{extra}')
    proc = subprocess.Popen([sys.executable, "-m", "powerhub_cli", "hub", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=open(work / f"{client_id}.log", "wb"))  # noqa: SIM115
    if wait:
        wait_for(lambda: "subscribing to" in (work / f"{client_id}.log").read_text(), 30, "the hub")
        time.sleep(0.5)
    return BenchHub(proc, port)


@contextmanager
def influx_and_broker(prefix: str) -> Iterator[tuple[Path, InfluxDB, Mosquitto]]:
    """A work directory with a real InfluxDB and Mosquitto on loopback ports, stopped afterwards."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    (work / "influx").mkdir()
    (work / "mqtt").mkdir()
    influx, broker = InfluxDB(work / "influx"), Mosquitto(work / "mqtt")
    influx.start()
    broker.start()
    try:
        yield work, influx, broker
    finally:
        broker.stop()
        influx.stop()
