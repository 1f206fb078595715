"""Edge figures: how late the agent stamps a blink (`blip_stamp_p99_ms`), and the agent's RSS reading the live peers
of a rack's management host (`agent_rss_mb`: a blink meter, 3 BMCs, 2 PDUs, publishing to Mosquitto).

    .venv/bin/python -m bench.edge [--lines 2000]

Stamping: the Arduino's lines are written to a pty pair; the real `powerhub agent --stdout` reads the other end. The
lateness of a point is its `ts` minus the wall clock just before the line was written (both in whole ms, so a
figure carries up to 1 ms of rounding).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.peers import agent_config, reader_peers
from bench.proc import p99, rss_mb
from tests.peers import Mosquitto


def _stdout_agent(work: Path, readers: str) -> subprocess.Popen[str]:
    """`powerhub agent --stdout` with `readers`."""
    config = work / "stamp.toml"
    config.write_text(f'[agent]\nsite = "bench"\nname = "edge"\noutbox = "{work}/stamp-outbox.sqlite"\n' + readers)
    return subprocess.Popen([sys.executable, "-m", "powerhub_cli", "agent", "--config", str(config), "--stdout"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)


def blip_stamp(work: Path, lines: int, gap_s: float = 0.01) -> dict[str, float]:
    master, slave = os.openpty()
    port = os.ttyname(slave)
    readers = (f'[[agent.readers]]\nkind = "blip_serial"\ndevice = "mainmeter"\nport = "{port}"\n'
               "skip_lines_on_open = 0\n")
    agent = _stdout_agent(work, readers)
    assert agent.stdout is not None
    stamped: list[int] = []

    def read_stamps() -> None:  # concurrently: a full stdout pipe would stop the agent reading the port
        assert agent.stdout is not None
        for line in agent.stdout:
            stamped.append(json.loads(line.split(" ", 1)[1])["ts"])

    reader = threading.Thread(target=read_stamps, daemon=True)
    reader.start()
    try:
        time.sleep(3.0)  # the agent opened the port
        written: list[int] = []
        for i in range(lines):
            written.append(time.time_ns() // 1_000_000)
            os.write(master, f"{1000 + i % 7}\r\n".encode())
            time.sleep(gap_s)
        deadline = time.monotonic() + 30
        while len(stamped) < lines and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        agent.terminate()
        agent.wait(30)
        os.close(master)
        os.close(slave)
    late = [float(ts - w) for ts, w in zip(stamped, written, strict=False)]
    return {"blip_stamp_p99_ms": p99(late), "blip_stamp_max_ms": max(late),
            "blip_stamped_lines": float(len(stamped))}


def agent_rss(work: Path, broker: Mosquitto, seconds: float = 30.0) -> float:
    """Peak RSS of an agent reading live peers (ipmi_sim BMCs, snmpsim PDUs, a blinking pty) every second for
    `seconds`, sampled each second. In `make bench` the broker still holds the bench hubs' sessions, which take
    its points; run alone nobody subscribes and they wait in the outbox, as when the hub is away. `make soak` runs
    the same agent with a hub and the web app for ten minutes."""
    with reader_peers(work) as peers:
        config = work / "edge.toml"
        config.write_text(agent_config(work, broker, peers))
        agent = subprocess.Popen([sys.executable, "-m", "powerhub_cli", "agent", "--config", str(config)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            peak_mb = 0.0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(1.0)
                peak_mb = max(peak_mb, rss_mb(agent.pid))
            return round(peak_mb, 1)
        finally:
            agent.terminate()
            agent.wait(30)


def edge_figures(work: Path, broker: Mosquitto, lines: int = 2000) -> dict[str, float]:
    figures = blip_stamp(work, lines)
    figures["agent_rss_mb"] = agent_rss(work, broker)
    return figures


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="powerhub-bench-edge-"))
    (work / "mqtt").mkdir()
    broker = Mosquitto(work / "mqtt")
    broker.start()
    try:
        figures = edge_figures(work, broker, args.lines)
    finally:
        broker.stop()
    for name, value in figures.items():
        print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
