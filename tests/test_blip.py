"""The blipserver routes as Studentergaarden's front end reads them: constant-free numbers on a meter that is not
1000 imp/kWh, `/aggregate_hourly` and `/usage`, on both stores (blipserver-api.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.stores import open_store
from telemetry import Point, SeriesKey
from telemetry.timeunits import HOUR_MS, now_ms
from tests.test_web_api import BAD_NUMBERS, T0, assert_json_error, blip_get, make_app

# Studentergaarden's meter: 600 imp/kWh behind a x4 current transformer, so the agent stores w = 4 * 6_000_000 / ms.
SG = SeriesKey("sg", "meter2", "power")
IMP_PER_KWH, CT_RATIO = 600, 4


def blinks(start_ms: int, every_ms: int, n: int, seq0: int) -> list[Point]:
    w = CT_RATIO * 3_600_000_000 / (IMP_PER_KWH * every_ms)
    return [Point(SG, start_ms + i * every_ms, seq0 + i, {"w": w, "ms": every_ms}) for i in range(n)]


@pytest.fixture
def sg_app(store_url: str) -> Iterator[Flask]:
    """Hour 0: 360 blinks every 10 s; hour 1: 720 every 5 s; hour 2: none; hour 3: 100 every second, then quiet."""
    store = open_store(store_url)
    store.write(blinks(T0, 10_000, 360, 1) + blinks(T0 + HOUR_MS, 5_000, 720, 361)
                + blinks(T0 + 3 * HOUR_MS, 1_000, 100, 1081))
    store.close()
    yield make_app(store_url, blip_default=SG.id, blip_aliases={"2": SG.id})


@pytest.fixture
def sg(sg_app: Flask) -> FlaskClient:
    return sg_app.test_client()


def test_hourly_is_constant_free_as_blipserver_answers(sg: FlaskClient) -> None:
    # blipserver's usage_hourly.wh: 3,600,000 * blips / sum(ms), whatever the meter's constant.
    assert blip_get(sg, f"/hourly/2/{T0}/{T0 + 3 * HOUR_MS}") == [
        [T0, 360, pytest.approx(360.0), 10_000, 10_000], [T0 + HOUR_MS, 720, pytest.approx(720.0), 5_000, 5_000],
        [T0 + 3 * HOUR_MS, 100, pytest.approx(3600.0), 1000, 1000]]
    minutely = blip_get(sg, f"/minutely/{T0}/{T0 + 59_999}")
    assert minutely[0] == [T0, 6, pytest.approx(360.0), 10_000, 10_000]
    # graph.js multiplies by its own constant (1000/600 * 4): the page then shows the real power again.
    assert minutely[0][2] * 1000 / 600 * 4 == pytest.approx(2400.0)


def test_api_keeps_the_real_watts(sg: FlaskClient) -> None:
    body = sg.get(f"/api/v1/series/{SG.id}/history?from={T0}&to={T0 + HOUR_MS}&step={HOUR_MS}").get_json()
    assert body[0]["mean_w"] == pytest.approx(2400.0)
    assert body[0]["wh"] == pytest.approx(360 * CT_RATIO * 1000 / IMP_PER_KWH)  # 360 blinks of 4/600 kWh each


def test_aggregate_hourly_sums_the_hourly_means_per_interval(sg: FlaskClient) -> None:
    two_hours = 2 * HOUR_MS
    expected = [[0, pytest.approx(360.0 + 720.0)], [two_hours, pytest.approx(3600.0)]]
    assert blip_get(sg, f"/aggregate_hourly/2/{T0}/{two_hours}/3") == expected
    assert blip_get(sg, f"/aggregate_hourly/{T0}/{two_hours}/3") == expected  # the id-less form
    assert blip_get(sg, f"/aggregate_hourly/{SG.id}/{T0}/{two_hours}/1") == [[0, pytest.approx(1080.0)]]
    # Only hours that start in [since, since + interval * count): T0's hour starts before T0 + 1.
    assert blip_get(sg, f"/aggregate_hourly/2/{T0 + 1}/{two_hours}/1") == [[0, pytest.approx(720.0)]]
    # Offsets are relative to since, intervals with nothing are left out.
    assert blip_get(sg, f"/aggregate_hourly/2/{T0 - HOUR_MS}/{HOUR_MS}/5") == [
        [HOUR_MS, pytest.approx(360.0)], [2 * HOUR_MS, pytest.approx(720.0)], [4 * HOUR_MS, pytest.approx(3600.0)]]
    assert blip_get(sg, f"/aggregate_hourly/2/{T0 + 10 * HOUR_MS}/{HOUR_MS}/1000") == []


def test_aggregate_hourly_limits_and_bad_numbers(sg: FlaskClient) -> None:
    assert_json_error(sg.get(f"/aggregate_hourly/2/{T0}/1/1001"), 400, "count must be at most 1000")
    assert_json_error(sg.get(f"/aggregate_hourly/{T0}/0/10"), 400, "interval")
    for bad in BAD_NUMBERS:
        for route in (f"/aggregate_hourly/2/{bad}/1/1", f"/aggregate_hourly/1/{bad}/1", f"/usage/2/{bad}",
                      f"/usage/{bad}"):
            resp = sg.get(route)
            assert_json_error(resp, 400)
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert_json_error(sg.get("/usage/sg.nothing.power/1000"), 404, "unknown series")


@pytest.mark.parametrize("path", ["/usage/1000", "/usage/2/1000", "/aggregate_hourly/1/2/3",
                                  "/aggregate_hourly/2/1/2/3"])
def test_options_on_the_fork_routes(sg: FlaskClient, path: str) -> None:
    resp = sg.options(path)
    assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Methods"] == "GET"


def test_usage_counts_blinks_since_now_minus_ms(store_url: str) -> None:
    now = now_ms()
    store = open_store(store_url)
    store.write(blinks(now - 10_000, 1000, 10, 1))  # the newest at now - 1000
    store.close()
    client = make_app(store_url, blip_default=SG.id, blip_aliases={"2": SG.id}).test_client()
    assert blip_get(client, "/usage/2/5500") == [5]
    assert blip_get(client, "/usage/5500") == [5]
    assert blip_get(client, f"/usage/{SG.id}/60000") == [10]
    assert blip_get(client, "/usage/2/500") == [0]
