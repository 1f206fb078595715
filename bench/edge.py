"""Edge figures: how late the agent stamps a blink (`blip_stamp_p99_ms`), and the agent's RSS with the readers of a
rack's management host configured (`agent_rss_mb`: a blink meter, 3 BMCs, 2 PDUs, publishing to Mosquitto).

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

from bench.proc import p99, rss_mb
from tests.conftest import Mosquitto, free_port_udp

READERS_RSS_TOML = """
[[agent.readers]]
kind = "blip_serial"
device = "mainmeter"
port = "{port}"
skip_lines_on_open = 0

[[agent.readers]]
kind = "ipmi_dcmi"
interval_s = 10
hosts = [
  {{ device = "node1", host = "127.0.0.1", port = {ipmi1}, username = "admin", password = "x" }},
  {{ device = "node2", host = "127.0.0.1", port = {ipmi2}, username = "admin", password = "x" }},
  {{ device = "node3", host = "127.0.0.1", port = {ipmi3}, username = "admin", password = "x" }},
]

[[agent.readers]]
kind = "snmp_pdu"
device = "pdu-a"
host = "127.0.0.1"
port = {snmp1}
community = "public"
profile = "apc"
interval_s = 10

[[agent.readers]]
kind = "snmp_pdu"
device = "pdu-b"
host = "127.0.0.1"
port = {snmp2}
community = "public"
profile = "servertech"
interval_s = 10
"""


def _agent(work: Path, readers: str, mqtt_port: int | None = None) -> subprocess.Popen[str]:
    """`powerhub agent`: publishing to the broker on `mqtt_port`, or with none, `--stdout`."""
    config = work / "edge.toml"
    mqtt = f'[mqtt]\nurl = "mqtt://127.0.0.1:{mqtt_port}"\n' if mqtt_port else ""
    config.write_text(mqtt + f'[agent]\nsite = "bench"\nname = "edge"\noutbox = "{work}/outbox.sqlite"\n' + readers)
    stdout = [] if mqtt_port else ["--stdout"]
    return subprocess.Popen([sys.executable, "-m", "powerhub_cli", "agent", "--config", str(config), *stdout],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)


def blip_stamp(work: Path, lines: int, gap_s: float = 0.01) -> dict[str, float]:
    master, slave = os.openpty()
    port = os.ttyname(slave)
    readers = (f'[[agent.readers]]\nkind = "blip_serial"\ndevice = "mainmeter"\nport = "{port}"\n'
               "skip_lines_on_open = 0\n")
    agent = _agent(work, readers)
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


def agent_rss(work: Path, mqtt_port: int, settle_s: float = 20.0) -> float:
    """RSS of a publishing agent with every reader configured and running (no peers answer: the readers' libraries
    and sessions are what counts here; `make soak` measures it against live snmpsim and ipmi_sim peers over ten
    minutes). No hub subscribes, so its points wait in the outbox, as when the hub is away."""
    master, slave = os.openpty()
    readers = READERS_RSS_TOML.format(port=os.ttyname(slave), ipmi1=free_port_udp(), ipmi2=free_port_udp(),
                                      ipmi3=free_port_udp(), snmp1=free_port_udp(), snmp2=free_port_udp())
    agent = _agent(work, readers, mqtt_port)
    try:
        time.sleep(settle_s)
        return round(rss_mb(agent.pid), 1)
    finally:
        agent.terminate()
        agent.wait(30)
        os.close(master)
        os.close(slave)


def edge_figures(work: Path, mqtt_port: int, lines: int = 2000) -> dict[str, float]:
    figures = blip_stamp(work, lines)
    figures["agent_rss_mb"] = agent_rss(work, mqtt_port)
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
        figures = edge_figures(work, broker.port, args.lines)
    finally:
        broker.stop()
    for name, value in figures.items():
        print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
