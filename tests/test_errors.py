"""One JSON error shape on every route the OpenAPI document lists, `/healthz` included: bad parameters (400), an
unknown series (404) and a store that does not answer (503) are all `{"error": "..."}`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from hub.stores import open_store
from telemetry import Point, SeriesKey
from tests.peers import free_port
from tests.test_web_api import assert_json_error
from web import create_app
from web.openapi import document

METER = SeriesKey("lab", "mainmeter", "power")
ROUTES = sorted(document()["paths"])
EXEMPT = {"/", "/metrics", "/api/v1/openapi.json"}  # no input, no store: they cannot fail on either
# Read from the broker's retained alert topics and the hub, not the store: their 503s are tested in test_alerts.py.
NOT_FROM_STORE = {"/api/v1/alerts", "/api/v1/alerts/history"}


def url(route: str, series: str, number: str) -> str:
    """The route with every path parameter filled: series ids with `series`, numbers with `number`."""
    def fill(match: re.Match[str]) -> str:
        return series if match.group(1) in ("series_id", "blip_id") else number
    path = re.sub(r"\{(\w+)\}", fill, route)
    params = {p["name"]: p for p in document()["paths"][route]["get"].get("parameters", []) if p["in"] == "query"}
    query = [f"{name}={series if name == 'series' else number}" for name in params]
    return path + ("?" + "&".join(query) if query else "")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store_url = f"sqlite:///{tmp_path_factory.mktemp('errors')}/p.sqlite"
    store = open_store(store_url)
    store.write([Point(METER, 1_700_000_000_000 + i * 1000, i + 1, {"w": 3600.0, "ms": 1000}) for i in range(10)])
    store.close()
    return create_app({"store": {"url": store_url}, "web": {"live": False, "blip_default": METER.id}}).test_client()


@pytest.mark.parametrize("route", [r for r in ROUTES if r not in EXEMPT])
def test_bad_input_and_unknown_series_answer_the_one_shape(client: Any, route: str) -> None:
    params = document()["paths"][route]["get"].get("parameters", [])
    if any(p["schema"].get("type") == "integer" for p in params):
        assert_json_error(client.get(url(route, METER.id, "not-a-number")), 400)
    if any(p["name"] in ("series_id", "blip_id", "series") for p in params):
        assert_json_error(client.get(url(route, "lab.nothing.power", "1")), 404, "unknown series")


@pytest.mark.parametrize("route", [r for r in ROUTES if r not in EXEMPT | NOT_FROM_STORE])
def test_a_store_that_does_not_answer_is_503_in_the_one_shape(tmp_path: Path, route: str) -> None:
    down = create_app({"store": {"url": f"influxdb://127.0.0.1:{free_port()}/x"},
                       "web": {"live": False, "blip_default": METER.id}}).test_client()
    assert_json_error(down.get(url(route, METER.id, "1")), 503, "store unavailable")
