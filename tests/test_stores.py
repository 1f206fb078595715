"""One contract, run against both stores: the embedded SQLite file and a real InfluxDB 1.6 over its v1 API."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.stores import Store, StoreUnavailable, open_store
from hub.stores.influx import LATEST_FULL_MS, InfluxStore
from telemetry import Point, SeriesKey
from telemetry.timeunits import now_ms

METER = SeriesKey("lab", "mainmeter", "power")
NODE = SeriesKey("lab", "node17", "power")
LOAD = SeriesKey("lab", "node17", "load1")
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def blinks(n: int, start: int = T0, ms: int = 1000) -> list[Point]:
    return [Point(METER, start + i * ms, i + 1, {"w": 3_600_000 / ms, "ms": ms}) for i in range(n)]


def test_write_and_read_back_in_order(store: Store) -> None:
    pts = blinks(10)
    store.write(pts[5:] + pts[:5])
    got = store.points(METER, T0, T0 + 10_000, 100)
    assert [p.ts_ms for p in got] == [p.ts_ms for p in pts]
    assert got == pts


def test_range_is_half_open_and_limited(store: Store) -> None:
    store.write(blinks(10))
    assert [p.ts_ms for p in store.points(METER, T0 + 2000, T0 + 4000, 100)] == [T0 + 2000, T0 + 3000]
    assert [p.seq for p in store.points(METER, T0, T0 + 10_000, 3)] == [1, 2, 3]
    assert [p.seq for p in store.points(METER, T0, T0 + 10_000, 3, newest=True)] == [8, 9, 10]


def test_same_point_twice_is_stored_once(store: Store) -> None:
    pts = blinks(5)
    store.write(pts)
    store.write(pts)
    store.write(pts[2:4])
    assert store.points(METER, T0, T0 + 10_000, 100) == pts


def test_extras_and_types_survive(store: Store) -> None:
    p = Point(NODE, T0, 3, {"w": 250.0, "a": 1.1, "machine": "node17", "min_w": 240.0, "vendor_x": 2.0, "ok": True})
    store.write([p])
    (got,) = store.points(NODE, T0, T0 + 1, 10)
    assert got == p
    assert isinstance(got.fields["w"], float)


def test_series_lists_every_series_with_its_newest_point(store: Store) -> None:
    store.write(blinks(3))
    store.write([Point(NODE, T0 + 5, 1, {"w": 100.0}), Point(LOAD, T0 + 7, 2, {"value": 0.75})])
    infos = {i.key.id: i for i in store.series()}
    assert set(infos) == {METER.id, NODE.id, LOAD.id}
    assert store.series_keys() == [i.key for i in store.series()] == sorted([METER, NODE, LOAD], key=str)
    last = infos[METER.id].last
    assert last is not None and last.ts_ms == T0 + 2000 and last.seq == 3
    load_last = infos[LOAD.id].last
    assert load_last is not None and load_last.number == 0.75


def test_series_keeps_up_with_new_series_and_newer_points(store: Store) -> None:
    """The list is kept between calls (InfluxDB: asked whole only every LATEST_FULL_MS): a new series shows at
    once, also one stamped long ago; so does a newer point; a known series' late point, stamped before the last
    call, shows by the next whole asking at the latest."""
    store.write(blinks(3))
    assert [i.key for i in store.series()] == [METER]
    store.write([Point(NODE, T0, 1, {"w": 200.0})])  # a new series, stamped long ago
    assert {i.key: i.last.ts_ms for i in store.series() if i.last} == {METER: T0 + 2000, NODE: T0}
    now = now_ms()
    store.write([Point(METER, now, 4, {"w": 5.0})])
    assert {i.key: i.last.seq for i in store.series() if i.last} == {METER: 4, NODE: 1}
    store.write([Point(NODE, T0 + 5000, 2, {"w": 201.0})])  # late: stamped before the last call
    if isinstance(store, InfluxStore):
        assert store._latest_full_at is not None
        store._latest_full_at -= LATEST_FULL_MS  # as if LATEST_FULL_MS had passed
    assert {i.key: i.last.seq for i in store.series() if i.last} == {METER: 4, NODE: 2}


def test_unknown_series_reads_empty(store: Store) -> None:
    assert store.points(SeriesKey("x", "y", "z"), 0, T0 * 2, 10) == []
    assert store.buckets(SeriesKey("x", "y", "z"), 0, T0 * 2, 1000) == []


def test_buckets_of_blinks(store: Store) -> None:
    # 1 Hz blinks at 1000 ms (3600 W) for 10 s, then 500 ms blinks (7200 W) for 10 s.
    pts = blinks(10) + [Point(METER, T0 + 10_000 + i * 500, 11 + i, {"w": 7200.0, "ms": 500}) for i in range(20)]
    store.write(pts)
    buckets = store.buckets(METER, T0, T0 + 20_000, 10_000, origin_ms=T0)
    assert [b.start_ms for b in buckets] == [T0, T0 + 10_000]
    first, second = buckets
    assert (first.count, first.mean, first.min, first.max) == (10, 3600.0, 3600.0, 3600.0)
    assert (first.sum_ms, first.min_ms, first.max_ms) == (10_000, 1000, 1000)
    assert first.blink_wh == pytest.approx(10.0)  # 10 blinks at 1000 imp/kWh = 10 Wh
    assert (second.count, second.mean, second.sum_ms) == (20, 7200.0, 10_000)
    assert second.blink_wh == pytest.approx(20.0)


def test_buckets_align_to_origin_and_skip_empty(store: Store) -> None:
    store.write([Point(NODE, T0 + 100, 1, {"w": 10.0}), Point(NODE, T0 + 3500, 2, {"w": 30.0})])
    buckets = store.buckets(NODE, T0, T0 + 10_000, 1000, origin_ms=T0 + 100)
    assert [(b.start_ms, b.count, b.mean) for b in buckets] == [(T0 + 100, 1, 10.0), (T0 + 3100, 1, 30.0)]
    assert buckets[0].sum_ms is None and buckets[0].blink_wh is None


def test_unreachable_influxdb_is_unavailable() -> None:
    from tests.peers import free_port

    store = open_store(f"influxdb://127.0.0.1:{free_port()}/nothing")
    with pytest.raises(StoreUnavailable):
        store.ping()
    with pytest.raises(StoreUnavailable):
        store.write(blinks(1))


def test_store_urls() -> None:
    with pytest.raises(ValueError, match="unknown store URL scheme"):
        open_store("postgres://x/y")
    with pytest.raises(ValueError, match="database"):
        open_store("influxdb://127.0.0.1:8086/")


def test_influx_store_takes_netrc_and_proxy_from_the_environment_once(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """requests would read them on every write; the store reads them when it opens, with the same outcome."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine influx.example login reader password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    store = InfluxStore("http://influx.example:8086", "db", None, None, None)
    assert store.http.auth == ("reader", "s3cret")
    assert store.http.proxies["http"] == "http://proxy.example:3128"
    with_token = InfluxStore("http://influx.example:8086", "db", None, None, "tok")
    assert with_token.http.auth is None and with_token.http.headers["Authorization"] == "Token tok"
