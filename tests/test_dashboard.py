"""The dashboard in Debian's headless chromium (Playwright, never a downloaded browser), against the web app serving a
real store and a real Mosquitto for the live feed: no console error, the live graph moves when a point is
published, a brush zoom loads finer data, the tooltip shows the stored value, a machine's outlets stack, dark theme,
an alert of a real hub is a banner and a band on its chart.
Screenshots land in tests/artifacts/."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from hub.stores import open_store
from telemetry import Point, SeriesKey
from telemetry.config import MqttConfig, Section
from telemetry.metrics import Metrics
from tests.peers import Publisher, wait_for
from tests.test_demo import chromium_page
from web import create_app
from web.server import WebServer

pytestmark = pytest.mark.peers  # starts real programs of its own: `make test` only

NODE = SeriesKey("lab", "node17", "power")
CHART_WIDTH = 1200  # chart.js's CHART.width: the SVG's viewBox
# The alert band on the chart and where it should be, read in one go (the live chart moves every second).
BAND = """([from, to]) => { const r = document.querySelector("#chart rect.mark");
  const x0 = +r.getAttribute("x"), now = chart.x(new Date(chart.domain[1]));
  return { x0, x1: x0 + +r.getAttribute("width"), start: chart.x(new Date(from)),
           end: to === null ? now : chart.x(new Date(to)), now }; }"""
PSU1, PSU2 = SeriesKey("lab", "pdu-a3", "outlet-1"), SeriesKey("lab", "pdu-b3", "outlet-1")
MINUTE = 60_000


def seed(url: str) -> None:
    """A day of minutes: node17 steady at 1234.5 W; web-01's two PSUs at 100 and 150 W."""
    store = open_store(url)
    now = time.time_ns() // 1_000_000
    t0 = now - 24 * 60 * MINUTE
    store.write([Point(NODE, t0 + i * MINUTE, i + 1, {"w": 1234.5}) for i in range(24 * 60)])
    for key, w in ((PSU1, 100.0), (PSU2, 150.0)):
        store.write([Point(key, t0 + i * MINUTE, i + 1, {"w": w, "machine": "web-01"}) for i in range(24 * 60)])
    store.close()


@pytest.fixture
def dashboard(mqtt_doc: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/points.sqlite"
    seed(url)
    server = WebServer(create_app({"mqtt": mqtt_doc, "store": {"url": url},
                                   "web": {"listen": "127.0.0.1:0", "blip_default": NODE.id,
                                           "price_per_kwh": 0.25, "currency": "EUR"}}))
    server.start()
    yield f"http://127.0.0.1:{server.port}/"
    server.stop()


@pytest.fixture
def page(dashboard: str) -> Iterator[tuple[Page, list[str]]]:
    errors: list[str] = []
    with chromium_page(dashboard, errors) as pg:
        expect(pg.locator("#detail-title")).to_have_text(NODE.id)
        yield pg, errors
    assert errors == []


def step_of(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["step"][0])


def chart_box(page: Page) -> dict[str, float]:
    box = page.locator("#chart svg").bounding_box()
    assert box is not None
    return box


def test_overview_lists_every_series_with_machine_and_total(page: tuple[Page, list[str]], artifacts: Path) -> None:
    pg, _ = page
    rows = pg.locator("#overview tbody tr")
    expect(rows).to_have_count(3)
    expect(pg.locator("#overview tbody tr", has_text=PSU1.id).locator("td.machine")).to_have_text("web-01")
    expect(pg.locator("#totals")).to_contain_text("lab 1,235 W")  # node17; the outlets belong to a machine
    expect(pg.locator("#overview .spark path").first).to_have_attribute("d", re.compile(r"^M.+L"))
    pg.screenshot(path=str(artifacts / "dashboard-overview.png"), full_page=True)


def test_live_graph_moves_when_a_point_is_published(page: tuple[Page, list[str]], mqtt_doc: dict[str, Any],
                                                    artifacts: Path) -> None:
    pg, _ = page
    expect(pg.locator("#now-w")).to_have_text("1,234.5")
    raw = Publisher(MqttConfig.parse(Section(mqtt_doc, "mqtt")))
    try:
        def published() -> bool:  # the page subscribes a moment after it loads: publish until it shows
            raw.send("data/lab/node17/power", json.dumps({"ts": time.time_ns() // 1_000_000, "seq": 99_999,
                                                          "w": 777.7}))
            return pg.locator("#now-w").text_content() == "777.7"

        wait_for(published, 20, "the live point on the page")
    finally:
        raw.close()
    assert pg.locator("#chart path.line").first.get_attribute("d")
    pg.screenshot(path=str(artifacts / "dashboard-live.png"))


def test_brush_zoom_loads_finer_data_and_tooltip_shows_the_value(page: tuple[Page, list[str]],
                                                                 artifacts: Path) -> None:
    pg, _ = page
    pg.click("text=24 h")
    expect(pg.locator("#status")).to_contain_text("buckets of 72 s")
    expect(pg.locator("#energy")).to_contain_text("kWh")
    box = chart_box(pg)
    y = box["y"] + box["height"] / 2
    with pg.expect_request(lambda r: "/history?" in r.url and step_of(r.url) < 72_000) as finer:
        pg.mouse.move(box["x"] + box["width"] * 0.5, y)
        pg.mouse.down()
        pg.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
        pg.mouse.up()
    step_s = step_of(finer.value.url) / 1000
    assert 5 < step_s < 10  # a tenth of the width: ten times finer than the day's 72 s
    expect(pg.locator("#status")).to_contain_text(f"buckets of {step_s:g} s")
    pg.mouse.move(box["x"] + box["width"] * 0.55, y)
    tooltip = pg.locator("#tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip.locator(".value")).to_have_text("1,234.5 W")
    expect(tooltip).to_contain_text("min 1,234.5 · max 1,234.5")
    domain = pg.evaluate("chart.domain")
    kwh = float(pg.locator("#energy").text_content().split(" kWh")[0])  # type: ignore[union-attr]
    assert kwh == pytest.approx(1.2345 * (domain[1] - domain[0]) / 3_600_000, rel=0.02)  # 1234.5 W all along
    pg.screenshot(path=str(artifacts / "dashboard-zoomed.png"))
    with pg.expect_request(lambda r: "/points?" in r.url):  # zoomed in under two hours: raw points
        for _ in range(3):
            pg.mouse.wheel(0, -300)
            pg.wait_for_timeout(50)
    expect(pg.locator("#status")).to_contain_text("raw points")
    before = pg.evaluate("chart.domain")
    with pg.expect_request(lambda r: "/points?" in r.url):  # Shift + wheel pans: same span, later times
        pg.keyboard.down("Shift")
        pg.mouse.wheel(0, 300)
        pg.keyboard.up("Shift")
    after = pg.evaluate("chart.domain")
    assert after[0] > before[0] and after[1] - after[0] == pytest.approx(before[1] - before[0], rel=1e-6)


def test_machine_view_stacks_its_outlets(page: tuple[Page, list[str]], artifacts: Path) -> None:
    pg, _ = page
    pg.locator("#overview td.machine a").first.click()
    expect(pg.locator("#detail-title")).to_have_text("machine web-01")
    expect(pg.locator("#legend .entry")).to_have_count(2)
    # Slow answers, so that "stacked" is ticked while the day is still loading: it must stack the day, not the
    # ten minutes still on screen (a race CI once caught).
    cdp = pg.context.new_cdp_session(pg)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions",
             {"offline": False, "latency": 400, "downloadThroughput": -1, "uploadThroughput": -1})
    pg.click("text=24 h")
    pg.check("#stack")
    expect(pg.locator("#chart path.area[d]")).to_have_count(2)
    # 250 W for the day on screen: about 6 kWh (5.9xx, the newest minute is not in yet), at 0.25 EUR/kWh
    expect(pg.locator("#energy")).to_have_text(re.compile(r"^(5\.9\d\d|6\.000) kWh · 1\.50 EUR$"))
    pg.screenshot(path=str(artifacts / "dashboard-machine-stacked.png"))


def test_dark_theme_follows_the_system(dashboard: str, artifacts: Path) -> None:
    with chromium_page(dashboard, color_scheme="dark") as pg:
        expect(pg.locator("#detail-title")).to_have_text(NODE.id)
        assert pg.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(17, 19, 24)"
        pg.screenshot(path=str(artifacts / "dashboard-dark.png"))


def test_an_alert_is_a_banner_and_a_band_on_its_chart_and_stays_a_band_once_resolved(
        dashboard: str, mqtt_doc: dict[str, Any], mqtt_root: str, tmp_path: Path, artifacts: Path) -> None:
    """A real hub on the same broker and store judges node17's points against a rule; the page shows what the
    hub's retained alert topic says while it fires, and the hub's history (through `web.hub_url`) once resolved."""
    from hub.config import HubConfig
    from hub.http import HubHttp
    from hub.run import start_hub

    metrics = Metrics()
    hub = start_hub(HubConfig.parse({
        "mqtt": mqtt_doc, "hub": {"client_id": f"hub-{mqtt_root}", "batch_age_s": 0.02},
        "store": {"url": f"sqlite:///{tmp_path}/points.sqlite"},
        "alerts": {"state_file": str(tmp_path / "alerts.sqlite"), "stale": {"enabled": False},
                   "offline": {"enabled": False},
                   "rules": [{"name": "node-hot", "series": NODE.id, "above": 1500.0, "severity": "critical"}]}}),
        metrics)
    http = HubHttp("127.0.0.1", 0, metrics, hub.agents, hub.alerts)
    http.start()
    web = WebServer(create_app({"mqtt": mqtt_doc, "store": {"url": f"sqlite:///{tmp_path}/points.sqlite"},
                                "web": {"listen": "127.0.0.1:0", "blip_default": NODE.id,
                                        "hub_url": f"http://127.0.0.1:{http.port}"}}))
    web.start()
    raw = Publisher(MqttConfig.parse(Section(mqtt_doc, "mqtt")))
    errors: list[str] = []
    summary = "lab.node17.power: w 2000 W is above 1500 (node-hot)"
    try:
        wait_for(hub.marked.is_set, what="the hub to subscribe")
        with chromium_page(f"http://127.0.0.1:{web.port}/", errors) as pg:
            expect(pg.locator("#detail-title")).to_have_text(NODE.id)
            expect(pg.locator("#alerts")).to_be_hidden()
            fired_ms = time.time_ns() // 1_000_000 - 60_000  # a minute ago: recent enough to be notified
            raw.send_points(NODE, [Point(NODE, fired_ms, 1_000_001, {"w": 2000.0})])
            banner = pg.locator("#alerts")
            expect(banner).to_be_visible(timeout=20_000)
            expect(banner.locator("h2")).to_have_text("1 alert firing")
            expect(banner.locator("li.critical")).to_contain_text(summary)
            mark = pg.locator("#chart rect.mark.critical")
            expect(mark).to_have_count(1)
            band = pg.evaluate(BAND, [fired_ms, None])  # from where it fired to the present
            assert band["x0"] == pytest.approx(band["start"], abs=1.5) and band["x1"] == pytest.approx(band["end"],
                                                                                                     abs=1.5)
            box = chart_box(pg)
            scale = box["width"] / CHART_WIDTH  # the SVG's viewBox units to the page's pixels
            at = pg.evaluate(f"chart.x(new Date({fired_ms + 5000}))")
            pg.mouse.move(box["x"] + at * scale, box["y"] + box["height"] / 2)
            expect(pg.locator("#tooltip .alert.critical")).to_have_text(summary)
            tip = pg.locator("#tooltip").bounding_box()
            assert tip is not None and tip["x"] + tip["width"] <= 1280  # inside the window
            pg.screenshot(path=str(artifacts / "dashboard-alert.png"))

            resolved_ms = fired_ms + 30_000
            raw.send_points(NODE, [Point(NODE, resolved_ms, 1_000_002, {"w": 1200.0})])
            expect(banner).to_be_hidden(timeout=20_000)
            # Resolved: still a band, from where it fired to where it resolved (the hub's history).
            expect(mark).to_have_count(1)
            closed = wait_for(lambda: (b := pg.evaluate(BAND, [fired_ms, resolved_ms]))["x1"] < b["now"] - 10 and b,
                              what="the band to close")
            assert closed["x0"] == pytest.approx(closed["start"], abs=1.5)
            assert closed["x1"] == pytest.approx(closed["end"], abs=1.5)
            pg.screenshot(path=str(artifacts / "dashboard-alert-resolved.png"))
        assert errors == []
    finally:
        raw.close()
        web.stop()
        http.stop()
        hub.stop()
        hub.store.close()
