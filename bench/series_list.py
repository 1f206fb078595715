"""The series list at data-centre size (issue 25): `GET /api/v1/series` and `Store.series()` over N series (10,000 by
default: 400 PDUs of 24 outlets and a total, each series with a few recent points), on SQLite and on InfluxDB.

    .venv/bin/python -m bench.series_list [--series 10000]

`series_list_{store}_cold_ms` is the first call (InfluxDB: every series' newest point read from the data, as every
call did before); `series_list_{store}_ms` a later one; `api_series_{store}_ms` the whole route, JSON included, and
`api_series_{store}_kb` its size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hub.stores import Store, open_store
from telemetry import Point, SeriesKey
from telemetry.series import TOTAL_CHANNEL, outlet_channel
from telemetry.timeunits import now_ms
from tests.peers import InfluxDB
from web import create_app

POINTS_PER_SERIES = 6
OUTLETS_PER_PDU = 24


def site_keys(n: int) -> list[SeriesKey]:
    keys = []
    pdu = 0
    while len(keys) < n:
        pdu += 1
        channels = [outlet_channel(i) for i in range(1, OUTLETS_PER_PDU + 1)] + [TOTAL_CHANNEL]
        keys += [SeriesKey("dc", f"pdu-{pdu:03d}", c) for c in channels]
    return keys[:n]


def fill(store: Store, keys: list[SeriesKey]) -> None:
    start = now_ms() - POINTS_PER_SERIES * 10_000
    batch: list[Point] = []
    for i in range(POINTS_PER_SERIES):
        for k in keys:
            batch.append(Point(k, start + i * 10_000, i + 1, {"w": 100.0 + i, "a": 0.5}))
            if len(batch) >= 5000:
                store.write(batch)
                batch = []
    store.write(batch)


def timed_ms(call: object) -> float:
    t0 = time.perf_counter()
    call()  # type: ignore[operator]
    return (time.perf_counter() - t0) * 1000


def figures(kind: str, url: str, n: int) -> dict[str, float]:
    store = open_store(url)
    try:
        fill(store, site_keys(n))
    finally:
        store.close()
    store = open_store(url)
    try:
        cold = timed_ms(store.series)
        listed = len(store.series())
        warm = min(timed_ms(store.series) for _ in range(3))
    finally:
        store.close()
    assert listed == n, f"{kind}: {listed} series listed of {n}"
    client = create_app({"store": {"url": url}, "web": {"live": False}}).test_client()
    client.get("/api/v1/series")  # the app's own first call reads the whole store, as above
    t0 = time.perf_counter()
    resp = client.get("/api/v1/series")
    api = (time.perf_counter() - t0) * 1000
    assert resp.status_code == 200 and len(resp.get_json()) == n
    return {f"series_list_{kind}_cold_ms": round(cold, 1), f"series_list_{kind}_ms": round(warm, 1),
            f"api_series_{kind}_ms": round(api, 1), f"api_series_{kind}_kb": round(len(resp.data) / 1024)}


def series_list_figures(work: Path, influx: InfluxDB, n: int) -> dict[str, float]:
    out = figures("sqlite", f"sqlite:///{work}/series-list.sqlite", n)
    out.update(figures("influx", f"influxdb://127.0.0.1:{influx.port}/serieslist", n))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="powerhub-bench-"))
    (work / "influx").mkdir()
    influx = InfluxDB(work / "influx")
    influx.start()
    try:
        for name, value in series_list_figures(work, influx, args.series).items():
            print(f"{name}: {value}")
    finally:
        influx.stop()


if __name__ == "__main__":
    main()
