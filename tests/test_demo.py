"""`powerhub demo` as a user runs it: embedded broker, simulated meters, hub, web; then Ctrl-C.
The dashboard is checked in Debian's headless chromium, driven by Playwright (no downloaded browser)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

from tests.peers import free_port, wait_for

pytestmark = pytest.mark.peers  # starts real programs of its own: `make test` only

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def chromium_page(url: str, errors: list[str] | None = None, **context: Any) -> Iterator[Page]:
    """A page of Debian's headless chromium at `url`; console errors and page errors go to `errors`."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, **context)
            if errors is not None:
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    var = tmp_path_factory.mktemp("demo") / "var"
    proc = subprocess.Popen([sys.executable, "-m", "powerhub_cli", "demo", "--port", str(port), "--var", str(var)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        assert f"dashboard on {url}/" in proc.stdout.readline()
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert (Path(var) / "points.sqlite").exists()


def series_with_points(url: str) -> list[dict[str, object]]:
    body = requests.get(f"{url}/api/v1/series", timeout=5).json()
    return [s for s in body if s["last"] is not None]


def test_demo_serves_simulated_meters(demo: str) -> None:
    ids = wait_for(lambda: {s["id"] for s in series_with_points(demo)} >= {"demo.house.power", "demo.rack.power"}
                   and series_with_points(demo), timeout_s=30, what="both simulated series")
    assert ids
    wait_for(lambda: len(requests.get(f"{demo}/last/600000", timeout=5).json()) >= 3, timeout_s=30,
             what="three blinks of the simulated house")
    stamp, ms = requests.get(f"{demo}/last", timeout=5).json()
    assert ms > 0 and stamp > 1_700_000_000_000


def test_dashboard_moves_in_chromium(demo: str, artifacts: Path) -> None:
    wait_for(lambda: series_with_points(demo), timeout_s=30, what="a series")
    errors: list[str] = []
    with chromium_page(demo + "/", errors) as page:
        expect(page.locator("#now-w")).not_to_have_text("\u2013", timeout=20_000)  # the placeholder dash
        first = page.locator("#now-at").text_content()
        expect(page.locator("#now-at")).not_to_have_text(first or "", timeout=20_000)  # a live point arrived
        assert page.locator("#chart path.line").get_attribute("d")
        page.screenshot(path=str(artifacts / "dashboard-live.png"))
        page.click("text=24 h")
        # Let live points arrive on top of the history buckets (the simulated house blinks every 1-3 s):
        # mixing both once drew NaN paths, which the console-error check below catches.
        page.wait_for_timeout(4000)
        page.screenshot(path=str(artifacts / "dashboard-24h.png"))
    assert errors == []


def test_demo_formulas_reach_the_dashboard(demo: str, artifacts: Path) -> None:
    wanted = {"demo.rack.formula-power", "demo.site.formula-unmetered", "demo.house.energy-day-power",
              "demo.rack.energy-day-formula-power"}
    wait_for(lambda: wanted <= {s["id"] for s in series_with_points(demo)}, timeout_s=60, what="the formulas' series")
    with chromium_page(demo + "/") as page:
        expect(page.locator("#overview tbody tr", has_text="demo.site.formula-unmetered")).to_be_visible()
        rack = page.locator("#overview tbody tr", has_text="demo.rack.formula-power")
        expect(rack.locator("td.day")).to_contain_text("kWh")  # energy per day beside the machine's power
        expect(page.locator("#overview tbody tr", has_text="demo.house.power").locator("td.day")
               ).to_contain_text("kWh")
        page.screenshot(path=str(artifacts / "dashboard-demo-formulas.png"), full_page=True)
