"""`/api/v1/openapi.json` describes the HTTP API, and schemathesis, run against the live app serving a real store,
finds no route answering 500, none answering outside its description, and bad input rejected with 4xx."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hub.agents import AgentBook
from hub.http import HubHttp
from hub.stores import open_store
from telemetry import Point, SeriesKey
from telemetry.metrics import Metrics
from web import create_app
from web.openapi import EXAMPLE_SERIES
from web.server import WebServer

pytestmark = pytest.mark.peers  # starts real programs of its own: `make test` only

T0 = 1_700_000_000_000
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('openapi')}/points.sqlite"
    store = open_store(url)
    meter = SeriesKey(*EXAMPLE_SERIES.split("."))
    store.write([Point(meter, T0 + i * 3600, i + 1, {"w": 1000.0, "ms": 3600}) for i in range(500)])
    store.write([Point(SeriesKey("lab", "node17", "load1"), T0 + i * 1000, 1000 + i, {"value": 0.5})
                 for i in range(50)])
    store.close()
    hub = HubHttp("127.0.0.1", 0, Metrics(), AgentBook(), None)  # a hub's endpoint, for the history of alerts
    hub.start()
    server = WebServer(create_app({"store": {"url": url}, "web": {
        "listen": "127.0.0.1:0", "live": False, "blip_default": EXAMPLE_SERIES,
        "hub_url": f"http://127.0.0.1:{hub.port}"}}))
    server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()
    hub.stop()


def test_document_lists_every_route(live_url: str) -> None:
    doc = requests.get(f"{live_url}/api/v1/openapi.json", timeout=5).json()
    assert doc["openapi"].startswith("3.")
    paths = set(doc["paths"])
    assert {"/api/v1/series", "/api/v1/series/{series_id}/points", "/api/v1/series/{series_id}/history",
            "/api/v1/export.csv", "/healthz", "/metrics", "/last", "/last/{blip_id}", "/since/{t}",
            "/range/{blip_id}/{a}/{b}", "/aggregate/{since}/{interval}/{count}", "/hourly/{a}/{b}",
            "/minutely/{blip_id}/{a}/{b}"} <= paths


def test_schemathesis_finds_nothing(live_url: str, tmp_path: Path) -> None:
    # Every check but positive_data_acceptance: OpenAPI cannot say `from` < `to`, "step or points, not both", or
    # which series exist, so some schema-valid requests are rightly answered 400 or 404.
    result = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{live_url}/api/v1/openapi.json", "--checks", "all",
         "--exclude-checks", "positive_data_acceptance",
         "--max-examples", "25", "--seed", "1", "--workers", "2", "--request-timeout", "10",
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=170, check=False, cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
