"""Soak: one agent reading a blink meter (pty), 3 BMCs (ipmi_sim) and 2 PDUs (snmpsim: APC and Sentry4) at 1 s,
through real Mosquitto to the hub (SQLite) and the web app, for `--duration-s` (default 600). Prints `name: value`:
the agent's RSS at start and end, points stored, and whether every power series reached the dashboard's overview.

    .venv/bin/python -m bench.soak_readers [--duration-s 600]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

from bench.proc import rss_mb
from tests.conftest import (
    BMC_PASSWORD,
    BMC_USER,
    IPMI_EXT_SOURCE,
    IpmiSim,
    Mosquitto,
    Pty,
    SnmpSim,
    free_port,
    secret_file,
    snmpsim_walk,
    wait_for,
)

SENTRY4 = Path(__file__).parent.parent / "tests" / "testdata" / "snmp" / "servertech-sentry4.snmprec"
CHROMIUM = "/usr/bin/chromium"


def config(work: Path, broker: Mosquitto, bmcs: list[IpmiSim], pdus: SnmpSim, pty: Pty, web_port: int) -> Path:
    secret_file(work / "bmc.pass", BMC_PASSWORD)
    hosts = ", ".join(f'{{ device = "node{i}", host = "127.0.0.1", port = {b.port}, username = "{BMC_USER}", '
                      f'password_file = "{work / "bmc.pass"}" }}' for i, b in enumerate(bmcs, start=1))
    path = work / "powerhub.toml"
    path.write_text(f"""
[mqtt]
url = "{broker.url()}"

[agent]
site = "lab"
name = "soak"
outbox = "{work / "outbox.sqlite"}"

[[agent.readers]]
kind = "blip_serial"
device = "mainmeter"
port = "{pty.port}"

[[agent.readers]]
kind = "ipmi_dcmi"
interval_s = 1
hosts = [ {hosts} ]

[[agent.readers]]
kind = "snmp_pdu"
device = "pdu-a"
host = "127.0.0.1"
port = {pdus.port}
community = "apc"
profile = "apc"
interval_s = 1

[[agent.readers]]
kind = "snmp_pdu"
device = "pdu-b"
host = "127.0.0.1"
port = {pdus.port}
community = "sentry"
profile = "servertech"
interval_s = 1

[store]
url = "sqlite:///{work / "points.sqlite"}"

[web]
listen = "127.0.0.1:{web_port}"
""")
    return path


def blink(pty: Pty, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        try:
            pty.write("3600\r\n")  # 1 kW at 1000 imp/kWh
        except OSError:
            return


def dashboard_series(url: str) -> list[str]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.wait_for_selector("#overview tbody tr td.id a", timeout=20_000)  # the overview's rows
            return [a.text_content() or "" for a in page.locator("#overview tbody tr td.id a").all()]
        finally:
            browser.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration-s", type=float, default=600)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="powerhub-soak-"))
    ext = work / "dcmi_power.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(ext), str(IPMI_EXT_SOURCE)], check=True)
    broker = Mosquitto(work)
    broker.start()
    bmcs = [IpmiSim(work / f"bmc{i}", ext, (200 + 10 * i, 150, 300, 220)) for i in range(3)]
    for b in bmcs:
        b.start()
    pdus = SnmpSim({"apc": snmpsim_walk("apc-8641"), "sentry": SENTRY4})
    pty, stop = Pty(work), threading.Event()
    web_port = free_port()
    cfg = config(work, broker, bmcs, pdus, pty, web_port)
    threading.Thread(target=blink, args=(pty, stop), daemon=True).start()
    procs = {name: subprocess.Popen([sys.executable, "-m", "powerhub_cli", name, "--config", str(cfg)],
                                    stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.log", "wb"))  # noqa: SIM115
             for name in ("agent", "hub", "web")}
    url = f"http://127.0.0.1:{web_port}"
    try:
        time.sleep(10)  # imports done, sessions open, first polls in
        start_mb = peak_mb = rss_mb(procs["agent"].pid)
        deadline = time.monotonic() + args.duration_s
        while time.monotonic() < deadline:
            time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
            peak_mb = max(peak_mb, rss_mb(procs["agent"].pid))
        end_mb = rss_mb(procs["agent"].pid)
        series = wait_for(lambda: requests.get(f"{url}/api/v1/series", timeout=5).json(), 10, "series")
        ids = sorted(s["id"] for s in series)
        shown = set(dashboard_series(url))
        watts = [s["id"] for s in series if s["unit"] == "W"]
        missing = sorted(set(watts) - shown)
        print(f"soak_duration_s: {args.duration_s:.0f}")
        print(f"agent_rss_start_mb: {start_mb:.1f}")
        print(f"agent_rss_end_mb: {end_mb:.1f}")
        print(f"agent_rss_peak_mb: {peak_mb:.1f}")
        print(f"series: {len(ids)}")
        print(f"series_missing_from_dashboard: {len(missing)} {' '.join(missing)}")
        print("series_ids: " + " ".join(ids))
        return 0 if not missing else 1
    finally:
        stop.set()
        for proc in procs.values():
            proc.terminate()
            proc.wait(30)
        pdus.stop()
        for b in bmcs:
            b.stop()
        broker.stop()
        pty.unplug()


if __name__ == "__main__":
    sys.exit(main())
