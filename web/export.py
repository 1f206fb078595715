"""CSV export (SPEC.md section 4): `/api/v1/export.csv`, and the same rows for `powerhub export`.

Three forms: ours (`timestamp,consumption`, ISO-8601 UTC with milliseconds); PowerGraph's live file, its `last.csv`
(`"date","consumption"`, every field quoted, `HH:MM:SS` UTC); and PowerGraph's daily file, its `data/YYYY-MM-DD.csv`
(`HH:MM:SS,watts` rows on the site's clock, no header, unquoted), so both of its pages read them unchanged.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import TextIO

from flask import Blueprint, Response, request

from hub.stores import Store
from telemetry import Point, SeriesKey
from telemetry.exportformats import CSV, FORMATS, POWERGRAPH, POWERGRAPH_DAILY
from telemetry.payload import END_TS_MS
from telemetry.timeunits import local_day
from web import state
from web.errors import abort_json
from web.params import query_int, series_key, time_range, zone_param

bp = Blueprint("export", __name__)

PAGE_POINTS = 20_000
MAX_TAIL = 1_000_000


def _iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _hms(ts_ms: int, tz: dt.tzinfo = dt.UTC) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz).strftime("%H:%M:%S")


def csv_lines(points: Iterator[Point], fmt: str, tz: dt.tzinfo = dt.UTC) -> Iterator[str]:
    """The rows of a format; `tz` is the clock of the daily file's times (the other two are UTC by definition)."""
    if fmt == POWERGRAPH:
        yield '"date","consumption"\n'
        for p in points:
            yield f'"{_hms(p.ts_ms)}","{p.number}"\n'
    elif fmt == POWERGRAPH_DAILY:
        for p in points:  # no header: PowerGraph's daily page would draw it as a NaN point, then nothing
            yield f"{_hms(p.ts_ms, tz)},{p.number}\n"
    else:
        yield "timestamp,consumption\n"
        for p in points:
            yield f"{_iso(p.ts_ms)},{p.number}\n"


def range_points(store: Store, key: SeriesKey, from_ms: int, to_ms: int) -> Iterator[Point]:
    """Every point in range, oldest first, fetched a page at a time so memory stays flat for long ranges."""
    while from_ms < to_ms:
        page = store.points(key, from_ms, to_ms, PAGE_POINTS)
        yield from page
        if len(page) < PAGE_POINTS:
            return
        from_ms = page[-1].ts_ms + 1


def with_progress(points: Iterator[Point], from_ms: int, to_ms: int, out: TextIO,
                  every_s: float = 0.5) -> Iterator[Point]:
    """Pass the points through, writing how far through the range they are to `out` (a terminal) now and then."""
    n, shown = 0, 0.0
    for p in points:
        n += 1
        now = time.monotonic()
        if now - shown >= every_s:
            shown = now
            out.write(f"\r{100 * (p.ts_ms - from_ms) / max(1, to_ms - from_ms):5.1f} %  {n:,} points")
            out.flush()
        yield p
    out.write(f"\r100.0 %  {n:,} points\n")
    out.flush()


@bp.get("/api/v1/export.csv")
def export_csv() -> Response:
    key = series_key(request.args.get("series", ""))
    fmt = request.args.get("format", CSV)
    if fmt not in FORMATS:
        abort_json(400, f"format must be one of {', '.join(FORMATS)}")
    st = state()
    tail, day = query_int("tail", None), request.args.get("date")
    if tail is not None and day is not None:
        abort_json(400, "give date or tail, not both")
    tz = zone_param()
    if tail is not None:
        if not 1 <= tail <= MAX_TAIL:
            abort_json(400, f"tail must be between 1 and {MAX_TAIL}")
        points: Iterator[Point] = iter(st.store.points(key, 0, END_TS_MS, tail, newest=True))
    else:
        if day is not None:
            try:
                from_ms, to_ms = local_day(day, tz)
            except ValueError as exc:
                abort_json(400, str(exc))
        else:
            from_ms, to_ms = time_range()
        points = range_points(st.store, key, from_ms, to_ms)
    name = f"{day}.csv" if fmt == POWERGRAPH_DAILY and day else f"{key.id}.csv"
    headers = {"Cache-Control": "no-cache", "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(csv_lines(points, fmt, tz), mimetype="text/csv", headers=headers)
