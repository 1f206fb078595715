"""Property-based tests (hypothesis) of everything that parses outside input: the data payload decoder, the serial
line parser and the HTTP routes' parameters. Whatever comes in: a result or the module's own clear error, never
another exception, and never a 500."""

from __future__ import annotations

import json
import math
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.outbox import Outbox
from edge_agent.publisher import MAX_POINTS_PER_MESSAGE, group_by_series, payload
from edge_agent.readers.blip_serial import MAX_MS, LineError, parse_line
from hub.stores import open_store
from hub.stores.influx import to_line, to_lines
from telemetry import PayloadError, Point, SeriesKey, decode_payload, encode_points
from telemetry.payload import MAX_TS_MS, MIN_TS_MS
from web import create_app

KEY = SeriesKey("lab", "mainmeter", "power")
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_decoder_takes_any_bytes(payload: bytes) -> None:
    try:
        points = decode_payload(KEY, payload)
    except PayloadError as exc:
        assert exc.reason in ("json", "type", "missing", "range", "oversized")
    else:
        assert points and all(p.key == KEY for p in points)


@settings(max_examples=500, deadline=None)
@given(st.one_of(JSON, st.fixed_dictionaries({"ts": JSON, "seq": JSON, "w": JSON}, optional={"ms": JSON})))
def test_decoder_takes_any_json(doc: object) -> None:
    try:
        points = decode_payload(KEY, json.dumps(doc).encode())
    except PayloadError:
        return
    for p in points:
        assert MIN_TS_MS <= p.ts_ms <= MAX_TS_MS and isinstance(p.seq, int)
        assert isinstance(p.fields["w"], float)


POINTS = st.lists(st.builds(
    lambda ts, seq, w, ms: Point(KEY, ts, seq, {"w": w, **({"ms": ms} if ms else {})}),
    st.integers(MIN_TS_MS, MAX_TS_MS), st.integers(1, 2**53), st.floats(0, 1e7, allow_nan=False),
    st.integers(0, MAX_MS)), min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(POINTS)
def test_what_the_agent_encodes_the_hub_decodes_unchanged(points: list[Point]) -> None:
    assert decode_payload(KEY, encode_points(points)) == points


LOWER = "abcdefghijklmnopqrstuvwxyz"
NAME = st.text(LOWER, min_size=1, max_size=3).map(lambda s: s + "-0")
EXTRA = st.text(LOWER + "_XYZ0123456789", min_size=1, max_size=6).map(lambda s: "x" + s)  # never seq, ms or w
FIELD_VALUE = (st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**63), 2**63) | st.booleans()
               | st.text(max_size=12))
LINE_POINTS = st.lists(st.builds(
    lambda site, device, channel, ts, seq, main, w, ms, machine, extras: Point(
        SeriesKey(site, device, channel), ts, seq,
        {main: w, **({"ms": ms} if ms else {}), **({"machine": machine} if machine else {}), **extras}),
    NAME, NAME, st.sampled_from(["power", "load1", "energy", "outlet-1"]), st.integers(MIN_TS_MS, MAX_TS_MS),
    st.integers(0, 2**53), st.sampled_from(["w", "value", "a"]),  # fields sort before and after `seq`
    st.floats(allow_nan=False) | st.integers(-(2**53), 2**53), st.integers(0, 2**31),
    st.text(max_size=10), st.dictionaries(EXTRA, FIELD_VALUE, max_size=4)), min_size=1, max_size=10)


@settings(max_examples=500, deadline=None)
@given(LINE_POINTS)
def test_the_writers_lines_are_what_influxdb_clients_point_writes(points: list[Point]) -> None:
    """`to_lines` reuses Point's text for heads, names and strings: the lines must be Point's own, byte for byte."""
    assert to_lines(points) == "\n".join(to_line(p) for p in points)


@settings(max_examples=300, deadline=None)
@given(LINE_POINTS.map(lambda pts: [Point(KEY, p.ts_ms, p.seq, p.fields) for p in pts]))
def test_the_writers_lines_are_points_own_when_one_series_changes_its_fields(points: list[Point]) -> None:
    """`to_lines` looks a series' text up again only when the fields change: here every point is of one series."""
    assert to_lines(points) == "\n".join(to_line(p) for p in points)


@settings(max_examples=200, deadline=None)
@given(LINE_POINTS.map(lambda pts: [p for p in pts if all(
    not isinstance(v, float) or math.isfinite(v) for v in p.fields.values())]))
def test_the_outbox_sends_what_encode_points_encodes(points: list[Point]) -> None:
    """The publisher sends rows spliced by SQLite (`Outbox.peek_wire`): byte for byte `encode_points`' payloads."""
    with tempfile.TemporaryDirectory() as tmp:
        outbox = Outbox(Path(tmp) / "o.sqlite")
        stored = [outbox.put(p) for p in points]
        groups = group_by_series(outbox.peek_wire(100), MAX_POINTS_PER_MESSAGE)
        outbox.close()
    runs: list[list[Point]] = []
    for p in stored:
        if runs and runs[-1][0].key == p.key:
            runs[-1].append(p)
        else:
            runs.append([p])
    assert [payload(g) for g in groups] == [encode_points(run) for run in runs]


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=40) | st.text(string.printable, max_size=30).map(str.encode))
def test_serial_parser_takes_any_line(raw: bytes) -> None:
    try:
        parsed = parse_line(raw)
    except LineError as exc:
        assert str(exc)
        return
    if parsed is not None:
        meter, ms = parsed
        assert 1 <= ms <= MAX_MS and (meter is None or meter.isascii())


@settings(max_examples=300, deadline=None)
@given(st.integers(1, MAX_MS), st.sampled_from(["", "\r", "\n", "\r\n", "  \r\n"]))
def test_serial_parser_reads_every_blink(ms: int, end: str) -> None:
    assert parse_line(f"{ms}{end}".encode()) == (None, ms)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    url = f"sqlite:///{tmp_path_factory.mktemp('props')}/points.sqlite"
    store = open_store(url)
    store.write([Point(KEY, 1_700_000_000_000 + i * 3600, i + 1, {"w": 1000.0, "ms": 3600}) for i in range(100)])
    store.close()
    app = create_app({"store": {"url": url}, "web": {"live": False, "blip_default": KEY.id}})
    yield app.test_client()


def _path_part(text: str) -> str:
    return text.replace("/", "_").replace("?", "_").replace("#", "_") or "x"


NUMBERISH = st.one_of(st.integers(-10, 10**20).map(str), st.text(max_size=12), st.just(""),
                      st.sampled_from(["1e3", "0x10", "٣", "9" * 16, " 1", "1.5", "-0"]))
ROUTES = ["/api/v1/series/{id}/points?from={a}&to={b}&limit={c}", "/api/v1/series/{id}/history?from={a}&step={b}",
          "/api/v1/series/{id}/history?points={c}&to={b}", "/api/v1/export.csv?series={id}&tail={a}",
          "/api/v1/export.csv?series={id}&date={a}", "/last/{a}", "/since/{id}/{a}", "/range/{a}/{b}",
          "/aggregate/{id}/{a}/{b}/{c}", "/hourly/{a}/{b}", "/minutely/{id}/{a}/{b}", "/last/{id}/{a}"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(ROUTES), st.sampled_from([KEY.id, "lab.nothing.power", "bad id", "a.b"]),
       NUMBERISH, NUMBERISH, NUMBERISH)
def test_no_route_answers_500(client: FlaskClient, route: str, series_id: str, a: str, b: str, c: str) -> None:
    from urllib.parse import quote

    path = route.format(id=quote(series_id), a=quote(_path_part(a)), b=quote(_path_part(b)),
                        c=quote(_path_part(c)))
    resp = client.get(path)
    assert resp.status_code in (200, 400, 404), (path, resp.status_code, resp.data[:200])
    if resp.status_code != 200:
        assert set(resp.get_json()) == {"error"}


def test_the_fuzzed_routes_have_data_to_answer_with(client: FlaskClient) -> None:
    assert client.get(f"/api/v1/series/{KEY.id}/points?from=0").get_json()[0][1] == 1000.0
