"""CSV export (SPEC.md section 4): `/api/v1/export.csv`, and the same rows for `powerhub export`.

Two forms: ours (`timestamp,consumption`, ISO-8601 UTC with milliseconds) and PowerGraph's own file
(`"date","consumption"`, every field quoted, `HH:MM:SS` UTC) so its front end reads it unchanged.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import TextIO

from flask import Blueprint, Response, request

from hub.stores import Store
from telemetry import Point, SeriesKey
from telemetry.payload import MAX_TS_MS
from web import state
from web.errors import abort_json
from web.params import query_int, series_key, time_range

bp = Blueprint("export", __name__)

PAGE_POINTS = 20_000
MAX_TAIL = 1_000_000
FORMATS = ("csv", "powergraph")


def _iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _hms(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%H:%M:%S")


def csv_lines(points: Iterator[Point], fmt: str) -> Iterator[str]:
    if fmt == "powergraph":
        yield '"date","consumption"\n'
        for p in points:
            yield f'"{_hms(p.ts_ms)}","{p.number}"\n'
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


def utc_day(text: str) -> tuple[int, int]:
    """`YYYY-MM-DD` -> the UTC day's half-open range in Unix ms; ValueError when it is no date."""
    day = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    start = int(day.timestamp() * 1000)
    return start, start + 86_400_000


@bp.get("/api/v1/export.csv")
def export_csv() -> Response:
    key = series_key(request.args.get("series", ""))
    fmt = request.args.get("format", "csv")
    if fmt not in FORMATS:
        abort_json(400, f"format must be one of {', '.join(FORMATS)}")
    st = state()
    tail, day = query_int("tail", None), request.args.get("date")
    if tail is not None and day is not None:
        abort_json(400, "give date or tail, not both")
    if tail is not None:
        if not 1 <= tail <= MAX_TAIL:
            abort_json(400, f"tail must be between 1 and {MAX_TAIL}")
        points: Iterator[Point] = iter(st.store.points(key, 0, MAX_TS_MS + 1, tail, newest=True))
    else:
        if day is not None:
            try:
                from_ms, to_ms = utc_day(day)
            except ValueError:
                abort_json(400, "date must be YYYY-MM-DD")
        else:
            from_ms, to_ms = time_range()
        points = range_points(st.store, key, from_ms, to_ms)
    name = f"{key.id}.csv"
    headers = {"Cache-Control": "no-cache", "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(csv_lines(points, fmt), mimetype="text/csv", headers=headers)
