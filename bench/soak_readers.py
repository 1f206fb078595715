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
import time
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

from bench.peers import agent_config, reader_peers
from bench.proc import rss_mb
from tests.peers import Mosquitto, free_port, wait_for

CHROMIUM = "/usr/bin/chromium"


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
    broker = Mosquitto(work)
    broker.start()
    try:
        with reader_peers(work) as peers:
            web_port = free_port()
            cfg = work / "powerhub.toml"
            cfg.write_text(agent_config(work, broker, peers) + f'\n[store]\nurl = "sqlite:///{work}/points.sqlite"\n'
                           f'\n[web]\nlisten = "127.0.0.1:{web_port}"\n')
            return soak(work, cfg, web_port, args.duration_s)
    finally:
        broker.stop()


def soak(work: Path, cfg: Path, web_port: int, duration_s: float) -> int:
    procs = {name: subprocess.Popen([sys.executable, "-m", "powerhub_cli", name, "--config", str(cfg)],
                                    stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.log", "wb"))  # noqa: SIM115
             for name in ("agent", "hub", "web")}
    url = f"http://127.0.0.1:{web_port}"
    try:
        time.sleep(10)  # imports done, sessions open, first polls in
        start_mb = peak_mb = rss_mb(procs["agent"].pid)
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
            peak_mb = max(peak_mb, rss_mb(procs["agent"].pid))
        end_mb = rss_mb(procs["agent"].pid)
        series = wait_for(lambda: requests.get(f"{url}/api/v1/series", timeout=5).json(), 10, "series")
        ids = sorted(s["id"] for s in series)
        shown = set(dashboard_series(url))
        watts = [s["id"] for s in series if s["unit"] == "W"]
        missing = sorted(set(watts) - shown)
        print(f"soak_duration_s: {duration_s:.0f}")
        print(f"agent_rss_start_mb: {start_mb:.1f}")
        print(f"agent_rss_end_mb: {end_mb:.1f}")
        print(f"agent_rss_peak_mb: {peak_mb:.1f}")
        print(f"series: {len(ids)}")
        print(f"series_missing_from_dashboard: {len(missing)} {' '.join(missing)}")
        print("series_ids: " + " ".join(ids))
        return 0 if not missing else 1
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    sys.exit(main())
