"""The HTTP API and the blipserver routes on a real store: shapes, limits, headers and every bad input."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.stores import open_store
from telemetry import Point, SeriesKey
from web import create_app

METER = SeriesKey("lab", "mainmeter", "power")
NODE = SeriesKey("lab", "node17", "power")
T0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000  # an hour boundary


def make_app(store_url: str, **web: Any) -> Flask:
    settings = {k: v for k, v in {"blip_default": METER.id, "live": False, **web}.items() if v is not None}
    doc = {"store": {"url": store_url}, "web": settings}
    return create_app(doc)


@pytest.fixture
def app(store_url: str) -> Iterator[Flask]:
    store = open_store(store_url)
    # Blinks every 1000 ms (3600 W) for the first 10 minutes of an hour, then every 500 ms for 15 minutes.
    pts = [Point(METER, T0 + i * 1000, i + 1, {"w": 3600.0, "ms": 1000}) for i in range(600)]
    pts += [Point(METER, T0 + 600_000 + i * 500, 601 + i, {"w": 7200.0, "ms": 500}) for i in range(1800)]
    store.write(pts)
    store.write([Point(NODE, T0 + i * 10_000, i + 1, {"w": 200.0 + i}) for i in range(100)])
    store.close()
    yield make_app(store_url, blip_aliases={"1": METER.id})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def assert_json_error(resp: Any, status: int, fragment: str = "") -> None:
    """The one error shape: `{"error": "..."}` with the status SPEC.md gives."""
    assert resp.status_code == status, resp.data
    assert resp.is_json
    body = resp.get_json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    assert fragment in body["error"]


def test_series_lists_last_points(client: FlaskClient) -> None:
    body = client.get("/api/v1/series").get_json()
    assert [s["id"] for s in body] == [METER.id, NODE.id]
    meter = body[0]
    assert meter == {"id": METER.id, "site": "lab", "device": "mainmeter", "channel": "power", "unit": "W",
                     "last": {"ts": T0 + 600_000 + 1799 * 500, "w": 7200.0},
                     "agent": None, "online": None, "gaps": None,  # no hub to ask: see test_gaps.py
                     "machine": None}


def test_points_half_open_with_next_from(client: FlaskClient) -> None:
    body = client.get(f"/api/v1/series/{NODE.id}/points?from={T0}&to={T0 + 50_000}").get_json()
    assert body == [[T0 + i * 10_000, 200.0 + i] for i in range(5)]
    resp = client.get(f"/api/v1/series/{NODE.id}/points?from={T0}&to={T0 + 10**7}&limit=3")
    assert resp.get_json() == [[T0 + i * 10_000, 200.0 + i] for i in range(3)]
    assert resp.headers["X-Next-From"] == str(T0 + 20_000 + 1)


def test_history_buckets_and_energy(client: FlaskClient) -> None:
    body = client.get(f"/api/v1/series/{METER.id}/history?from={T0}&to={T0 + 1_200_000}&step=600000").get_json()
    assert [b["ts"] for b in body] == [T0, T0 + 600_000]
    first, second = body
    assert (first["mean_w"], first["count"], first["min_w"], first["max_w"]) == (3600.0, 600, 3600.0, 3600.0)
    assert first["wh"] == pytest.approx(600.0)  # 600 blinks of 1 Wh
    assert second["wh"] == pytest.approx(1200.0)
    by_points = client.get(f"/api/v1/series/{METER.id}/history?from={T0}&to={T0 + 1_200_000}&points=2").get_json()
    assert by_points == body


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("from=abc", "from must be a whole number"),
        ("to=-5", "to must be a whole number"),
        ("from=1.5", "whole number"),
        ("from=", "from must be a whole number"),
        ("to=1&to=2", "give to once"),
        ("from=1234567890123456", "at most 15 digits"),
        ("from=2000&to=1000", "from must be before to"),
        ("step=0", "step must be at least"),
        ("step=1&from=0&to=1000000000", "at most 100000 buckets"),
        ("step=10&points=5", "not both"),
        ("points=0", "points must be between"),
    ],
)
def test_history_bad_parameters(client: FlaskClient, query: str, fragment: str) -> None:
    assert_json_error(client.get(f"/api/v1/series/{METER.id}/history?{query}"), 400, fragment)


def test_points_bad_limit_and_unknown_series(client: FlaskClient) -> None:
    assert_json_error(client.get(f"/api/v1/series/{METER.id}/points?limit=20001"), 400, "limit")
    assert_json_error(client.get(f"/api/v1/series/{METER.id}/points?limit=0"), 400, "limit")
    assert_json_error(client.get("/api/v1/series/lab.nothing.power/points"), 404, "unknown series")
    assert_json_error(client.get("/api/v1/series/not-an-id/points"), 400, "site.device.channel")
    assert_json_error(client.get("/api/v1/nothing"), 404)


def test_healthz_and_metrics(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json()["ok"] is True
    client.get("/api/v1/series")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'powerhub_http_requests_total{endpoint="api.series",status="200"} 1' in text
    assert "powerhub_sse_clients 0" in text


def test_healthz_503_when_influxdb_is_down() -> None:
    from tests.peers import free_port

    client = make_app(f"influxdb://127.0.0.1:{free_port()}/x").test_client()
    assert_json_error(client.get("/healthz"), 503, "store unavailable")  # the one error shape, /healthz too
    assert_json_error(client.get("/api/v1/series"), 503, "store unavailable")


# --- blipserver routes -------------------------------------------------------------------------------------------

BLIP_HEADERS = {
    "Cache-Control": "max-age=0, must-revalidate",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET",
    "Access-Control-Allow-Headers": "origin, x-requested-with, accept",
    "Access-Control-Max-Age": "60",
}


def blip_get(client: FlaskClient, path: str) -> Any:
    resp = client.get(path)
    assert resp.status_code == 200, resp.data
    for name, value in BLIP_HEADERS.items():
        assert resp.headers[name] == value
    assert resp.mimetype == "application/json"
    return resp.get_json()


@pytest.mark.parametrize("form", ["", "/lab.mainmeter.power"])
def test_last(client: FlaskClient, form: str) -> None:
    assert blip_get(client, f"/last{form}") == [T0 + 600_000 + 1799 * 500, 500]


def test_last_digits_only_is_n_not_an_alias(client: FlaskClient) -> None:
    # blipserver-api.md: `/last/{x}` with x all digits is labitat's `/last/{n}`, even where "1" is an alias.
    assert blip_get(client, "/last/1") == []
    assert blip_get(client, "/last/1/1") == []


def test_last_n_counts_back_from_now(app: Flask, store_url: str) -> None:
    now = int(time.time() * 1000)
    store = open_store(store_url)
    recent = SeriesKey("lab", "recent", "power")
    store.write([Point(recent, now - 5000 + i * 1000, i + 1, {"w": 3600.0, "ms": 1000}) for i in range(5)])
    store.close()
    client = make_app(store_url, blip_default=recent.id).test_client()
    got = blip_get(client, "/last/3500")
    assert got == [[now - 5000 + i * 1000, 1000] for i in (2, 3, 4)]
    assert blip_get(client, f"/last/{recent.id}/3500") == got
    assert blip_get(client, f"/last/{METER.id}/3500") == []


def test_since_pages_at_2000(client: FlaskClient) -> None:
    first = blip_get(client, f"/since/{T0 - 1}")
    assert len(first) == 2000 and first[0] == [T0, 1000]
    nxt = blip_get(client, f"/since/1/{first[-1][0]}")
    assert nxt[0][0] > first[-1][0]
    assert blip_get(client, f"/since/{T0 + 1}")[0] == [T0 + 1000, 1000]


def test_range_is_inclusive(client: FlaskClient) -> None:
    assert blip_get(client, f"/range/{T0}/{T0 + 2000}") == [[T0, 1000], [T0 + 1000, 1000], [T0 + 2000, 1000]]
    assert blip_get(client, f"/range/{METER.id}/{T0 + 1}/{T0 + 999}") == []


def test_aggregate_offsets_relative_to_since(client: FlaskClient) -> None:
    since = T0 + 300_000
    body = blip_get(client, f"/aggregate/{since}/600000/3")
    assert body == [[0, 300 + 600], [600_000, 1200]]
    assert blip_get(client, f"/aggregate/1/{since}/600000/3") == body


def test_hourly_and_minutely(client: FlaskClient) -> None:
    hourly = blip_get(client, f"/hourly/{T0}/{T0 + 3_600_000}")
    # 2400 blinks covering 1500 s: mean power over the covered time = 2400 Wh / (1500/3600 h) = 5760 W.
    assert hourly == [[T0, 2400, pytest.approx(5760.0), 500, 1000]]
    assert blip_get(client, f"/hourly/{T0 + 1}/{T0 + 3_600_000}") == []
    minutely = blip_get(client, f"/minutely/{METER.id}/{T0}/{T0 + 3_600_000}")
    assert len(minutely) == 25
    assert minutely[0] == [T0, 60, pytest.approx(3600.0), 1000, 1000]
    assert minutely[-1] == [T0 + 24 * 60_000, 120, pytest.approx(7200.0), 500, 500]


BAD_NUMBERS = ["abc", "-5", "1.5", "1234567890123456", "1e5", "%20"]
ROUTES = [
    "/last/{id}/{x}", "/since/{x}", "/since/{id}/{x}", "/range/{x}/1", "/range/1/{x}", "/range/{id}/{x}/1",
    "/aggregate/{x}/1/1", "/aggregate/1/{x}/1", "/aggregate/1/1/{x}", "/aggregate/{id}/1/1/{x}",
    "/hourly/{x}/1", "/hourly/{id}/1/{x}", "/minutely/{x}/1", "/minutely/{id}/1/{x}",
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_bad_numbers_are_400(client: FlaskClient, route: str, bad: str) -> None:
    resp = client.get(route.format(id=METER.id, x=bad))
    assert_json_error(resp, 400)
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_aggregate_limits(client: FlaskClient) -> None:
    assert_json_error(client.get("/aggregate/1/1/1001"), 400, "count must be at most 1000")
    assert_json_error(client.get("/aggregate/1/0/10"), 400, "interval")
    assert blip_get(client, "/aggregate/1/1/1000") == []


def test_blip_errors(client: FlaskClient, store_url: str) -> None:
    assert_json_error(client.get("/last/lab.nothing.power"), 404, "unknown series")
    assert_json_error(client.get("/last/7/100"), 400)  # "7" is no alias and no series id
    no_default = make_app(store_url, blip_default=None).test_client()
    assert_json_error(no_default.get("/last"), 404, "web.blip_default")
    assert_json_error(no_default.get("/since/5"), 404, "web.blip_default")


def test_last_on_a_series_without_blinks_is_404(client: FlaskClient) -> None:
    assert_json_error(client.get(f"/last/{NODE.id}"), 404, "no blink")


@pytest.mark.parametrize("path", ["/blip", "/last", "/last/5", "/since/1", "/range/1/2", "/aggregate/1/2/3",
                                  "/hourly/1/2", "/minutely/1/2", f"/last/{METER.id}/5"])
def test_options_answers_200_with_cors(client: FlaskClient, path: str) -> None:
    resp = client.options(path)
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Methods"] == "GET"


def test_blip_longpoll_limit_answers_204(app: Flask, store_url: str) -> None:
    client = make_app(store_url, longpoll_s=0.2).test_client()
    resp = client.get("/blip")
    assert resp.status_code == 204 and resp.data == b""
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_dashboard_page_and_assets(client: FlaskClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "/static/vendor/d3.v7.min.js" in html and "/static/app.js" in html
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    d3 = client.get("/static/vendor/d3.v7.min.js")
    assert d3.status_code == 200 and b"d3js.org" in d3.data[:200]
    d3.close()


def test_url_prefix(app: Flask, store_url: str) -> None:
    client = make_app(store_url, url_prefix="/ajax").test_client()
    assert client.get("/ajax/last").get_json()[1] == 500
    assert client.get("/last").status_code == 404
    assert b'src="/ajax/static/app.js"' in client.get("/ajax/").data


def test_allowlist_refuses_other_addresses(app: Flask, store_url: str) -> None:
    client = make_app(store_url, allow=["10.1.0.0/16"]).test_client()
    assert_json_error(client.get("/api/v1/series"), 403, "not allowed")
    assert client.get("/api/v1/series", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    default = make_app(store_url).test_client()
    assert_json_error(default.get("/last", environ_base={"REMOTE_ADDR": "192.0.2.7"}), 403)
    assert default.get("/last", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


# --- CSV export ------------------------------------------------------------------------------------------------------

def test_export_csv_range_date_and_tail(client: FlaskClient) -> None:
    resp = client.get(f"/api/v1/export.csv?series={NODE.id}&from={T0}&to={T0 + 20_000}")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Cache-Control"] == "no-cache"
    iso = "2023-11-14T22:00:00.000Z"
    assert T0 == 1_699_999_200_000
    assert resp.get_data(as_text=True) == f"timestamp,consumption\n{iso},200.0\n2023-11-14T22:00:10.000Z,201.0\n"
    day = client.get(f"/api/v1/export.csv?series={NODE.id}&date=2023-11-14").get_data(as_text=True).splitlines()
    assert len(day) == 1 + 100 and day[1] == f"{iso},200.0"
    assert client.get(f"/api/v1/export.csv?series={NODE.id}&date=2023-11-15").get_data(as_text=True) == \
        "timestamp,consumption\n"
    tail = client.get(f"/api/v1/export.csv?series={NODE.id}&tail=2").get_data(as_text=True).splitlines()
    assert tail[1:] == ["2023-11-14T22:16:20.000Z,298.0", "2023-11-14T22:16:30.000Z,299.0"]


def test_export_powergraph_form_parses_as_its_front_end_expects(client: FlaskClient) -> None:
    import csv
    import io
    import re

    text = client.get(f"/api/v1/export.csv?series={NODE.id}&date=2023-11-14&format=powergraph").get_data(as_text=True)
    lines = text.splitlines()
    assert lines[0] == '"date","consumption"'
    assert all(re.fullmatch(r'"\d\d:\d\d:\d\d","[0-9.]+"', line) for line in lines[1:])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0] == {"date": "22:00:00", "consumption": "200.0"} and len(rows) == 100


@pytest.mark.parametrize(
    ("query", "status"),
    [("series=lab.nothing.power", 404), ("series=", 400), (f"series={METER.id}&format=xls", 400),
     (f"series={METER.id}&date=2023-13-01", 400), (f"series={METER.id}&tail=0", 400),
     (f"series={METER.id}&tail=5&date=2023-11-14", 400), (f"series={METER.id}&from=x", 400)],
)
def test_export_bad_parameters(client: FlaskClient, query: str, status: int) -> None:
    assert_json_error(client.get(f"/api/v1/export.csv?{query}"), status)


def test_export_powergraph_daily_is_the_daily_pages_file(store_url: str) -> None:
    # PowerGraph's daily page: `HH:MM:SS,watts` rows, no header, unquoted, on the site's clock for its local day.
    store = open_store(store_url)
    local_midnight = 1_699_916_400_000  # 2023-11-14 00:00 in Copenhagen (UTC+1)
    node = SeriesKey("lab", "node18", "power")
    store.write([Point(node, local_midnight + i * 3_600_000 - 1000, i + 1, {"w": 100.0 + i}) for i in range(26)])
    store.close()
    client = make_app(store_url).test_client()
    query = f"series={node.id}&date=2023-11-14&format=powergraph-daily"
    resp = client.get(f"/api/v1/export.csv?{query}&tz=Europe/Copenhagen")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert 'filename="2023-11-14.csv"' in resp.headers["Content-Disposition"]
    lines = resp.get_data(as_text=True).splitlines()
    # The point 1 s before local midnight belongs to the day before; then one an hour, up to 23:59:59.
    assert lines[0] == "00:59:59,101.0" and lines[-1] == "23:59:59,124.0" and len(lines) == 24
    assert all(line.count(",") == 1 and '"' not in line for line in lines)
    utc = client.get(f"/api/v1/export.csv?{query}").get_data(as_text=True).splitlines()
    assert utc[0] == "00:59:59,102.0" and utc[-1] == "23:59:59,125.0"  # UTC day, UTC clock: the default


def test_export_date_follows_tz_across_dst(store_url: str) -> None:
    store = open_store(store_url)
    node = SeriesKey("lab", "node19", "power")
    start = 1_711_666_800_000  # 2024-03-29 00:00 in Copenhagen (UTC+1); 03-31 has 23 hours
    store.write([Point(node, start + i * 3_600_000, i + 1, {"w": float(i)}) for i in range(96)])
    store.close()
    client = make_app(store_url).test_client()
    rows = client.get(f"/api/v1/export.csv?series={node.id}&date=2024-03-31&tz=Europe/Copenhagen").get_data(
        as_text=True).splitlines()
    assert len(rows) == 1 + 23 and rows[1] == "2024-03-30T23:00:00.000Z,48.0"
    assert_json_error(client.get(f"/api/v1/export.csv?series={node.id}&date=2024-03-31&tz=Mars/Olympus"), 400,
                      "IANA time zone")
