"""blipserver's routes with its shapes, limits and headers (blipserver-api.md), for any blink series.

Each route exists in two forms: without an id (labitat's front end: the series of `web.blip_default`) and with
one (Studentergaarden's: a `web.blip_aliases` key or a series id). Responses are bare JSON arrays of numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from telemetry import Point, SeriesKey
from telemetry.payload import END_TS_MS
from telemetry.timeunits import DAY_MS, HOUR_MS, MINUTE_MS, now_ms
from web import state
from web.errors import abort_json
from web.params import series_key, whole_number

bp = Blueprint("blip", __name__)

LIMIT_LAST = 20_000
LIMIT_SINCE = 2_000
LIMIT_RANGE = 100_000
LIMIT_MINUTELY = 100_000
MAX_AGGREGATE_COUNT = 1000
BLIP_MS_WH = HOUR_MS  # one blink at 1000 imp/kWh is 1 Wh: a blink every ms is 3,600,000 W
HEADERS = {
    "Cache-Control": "max-age=0, must-revalidate",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET",
    "Access-Control-Allow-Headers": "origin, x-requested-with, accept",
    "Access-Control-Max-Age": "60",
}


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status, HEADERS, mimetype="application/json")


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers.update(HEADERS)  # errors too: a front end on another origin must be able to read them
    return resp


def _key(blip_id: str | None, must_exist: bool = True) -> SeriesKey:
    cfg = state().config
    if blip_id is None:
        if cfg.blip_default is None:
            abort_json(404, "no default blip series: set web.blip_default")
        return series_key(cfg.blip_default, must_exist)
    return series_key(cfg.blip_aliases.get(blip_id, blip_id), must_exist)


def _pairs(points: list[Point]) -> list[list[int]]:
    return [[p.ts_ms, int(p.fields["ms"])] for p in points if "ms" in p.fields]


def route(rule: str, id_form_only: bool = False, live: bool = False) -> Callable[[Callable[..., Response]],
                                                                                Callable[..., Response]]:
    """Register a handler `(key, *numbers)` at `/{rule}` (default series) and `/{name}/<blip_id>/{rest}`."""

    def add(handler: Callable[..., Response]) -> Callable[..., Response]:
        name, _, rest = rule.partition("/")
        params = [p.strip("<>") for p in rest.split("/") if p]

        def with_id(blip_id: str | None = None, **parts: str) -> Response:
            if request.method == "OPTIONS":
                return _json(None)
            numbers = [whole_number(p, parts[p]) for p in params]
            return handler(_key(blip_id, must_exist=not live), *numbers)

        endpoint = handler.__name__
        methods = ["GET", "OPTIONS"]
        if not id_form_only:
            bp.add_url_rule(f"/{name}/{rest}".rstrip("/"), endpoint, with_id, methods=methods)
        bp.add_url_rule(f"/{name}/<blip_id>/{rest}".rstrip("/"), endpoint + "_id", with_id, methods=methods)
        return handler

    return add


@route("blip", live=True)  # the long-poll may wait for a series' first blink
def blip(key: SeriesKey) -> Response:
    point = state().live.wait_next(key.id, state().config.longpoll_s)
    while point is not None and "ms" not in point.fields:
        point = state().live.wait_next(key.id, state().config.longpoll_s)
    if point is None:
        return Response(status=204, headers=HEADERS)
    return _json([point.ts_ms, point.fields["ms"]])


@bp.route("/last", methods=["GET", "OPTIONS"])
@bp.route("/last/<x>", methods=["GET", "OPTIONS"])
def last(x: str | None = None) -> Response:
    """`/last` and `/last/{id}`: the newest point; `/last/{n}` (digits only): the points of the last n ms."""
    if request.method == "OPTIONS":
        return _json(None)
    if x is not None and x.isascii() and x.isdigit():
        return last_n(_key(None), whole_number("n", x))
    key = _key(x)
    newest = _pairs(state().store.points(key, 0, END_TS_MS, 1, newest=True))
    if not newest:
        abort_json(404, f"series {key.id!r} has no blink yet")
    return _json(newest[0])


@route("last/<n>", id_form_only=True)  # `/last/{n}` is served by `last` above
def last_n(key: SeriesKey, n: int) -> Response:
    return _json(_pairs(state().store.points(key, now_ms() - n + 1, END_TS_MS, LIMIT_LAST)))


@route("since/<t>")
def since(key: SeriesKey, t: int) -> Response:
    return _json(_pairs(state().store.points(key, t + 1, END_TS_MS, LIMIT_SINCE)))


@route("range/<a>/<b>")
def range_(key: SeriesKey, a: int, b: int) -> Response:
    return _json(_pairs(state().store.points(key, a, b + 1, LIMIT_RANGE)))


def _check_aggregate(interval: int, count: int) -> None:
    if count > MAX_AGGREGATE_COUNT:
        abort_json(400, f"count must be at most {MAX_AGGREGATE_COUNT}")
    if interval == 0:
        abort_json(400, "interval must be at least 1 ms")


@route("aggregate/<since>/<interval>/<count>")
def aggregate(key: SeriesKey, since: int, interval: int, count: int) -> Response:
    _check_aggregate(interval, count)
    buckets = state().store.buckets(key, since, since + interval * count, interval, origin_ms=since)
    return _json([[b.start_ms - since, b.count] for b in buckets])


def blip_mean_w(blips: int, sum_ms: int) -> float:
    """blipserver's `wh` column (its `usage_hourly` view): the mean power over the time the blinks cover, as if the
    meter gave 1000 imp/kWh. Its front ends apply their own meter's constant to it, so it must stay constant-free
    (blipserver-api.md); the real watts are /api/v1's."""
    return BLIP_MS_WH * blips / sum_ms


def _usage(key: SeriesKey, a: int, b: int, step_ms: int, limit: int | None) -> Response:
    """Rows `[start, blips, mean_w, min_ms, max_ms]` for each step-long period that starts in [a, b]."""
    first = -(-a // step_ms) * step_ms
    end = (b // step_ms + 1) * step_ms
    if limit is not None:
        end = min(end, first + limit * step_ms)
    if first >= end:
        return _json([])
    rows = []
    for bk in state().store.buckets(key, first, end, step_ms):
        if bk.sum_ms:
            rows.append([bk.start_ms, bk.count, blip_mean_w(bk.count, bk.sum_ms), bk.min_ms, bk.max_ms])
    return _json(rows)


@route("hourly/<a>/<b>")
def hourly(key: SeriesKey, a: int, b: int) -> Response:
    return _usage(key, a, b, HOUR_MS, None)


@route("minutely/<a>/<b>")
def minutely(key: SeriesKey, a: int, b: int) -> Response:
    return _usage(key, a, b, MINUTE_MS, LIMIT_MINUTELY)


@route("aggregate_hourly/<since>/<interval>/<count>")
def aggregate_hourly(key: SeriesKey, since: int, interval: int, count: int) -> Response:
    """Studentergaarden's month graphs: per interval (offset relative to `since`), the sum of the constant-free mean
    power of the hours that start in it, as its server sums its `usage_hourly.wh` column."""
    _check_aggregate(interval, count)
    end = since + interval * count
    first_hour, end_hour = -(-since // HOUR_MS) * HOUR_MS, -(-end // HOUR_MS) * HOUR_MS
    sums: dict[int, float] = {}
    if first_hour < end:
        for bk in state().store.buckets(key, first_hour, end_hour, HOUR_MS):
            if bk.start_ms < end and bk.sum_ms:
                offset = interval * ((bk.start_ms - since) // interval)
                sums[offset] = sums.get(offset, 0.0) + blip_mean_w(bk.count, bk.sum_ms)
    return _json([[offset, total] for offset, total in sorted(sums.items())])


@route("usage/<ms>")
def usage(key: SeriesKey, ms: int) -> Response:
    """Studentergaarden's "usage" lines: `[n]`, the number of blinks with stamp >= now - ms."""
    start = now_ms() - ms
    end = now_ms() + DAY_MS  # "no upper bound", within reach of one store bucket: a stamp a little ahead counts
    buckets = state().store.buckets(key, start, end, end - start, origin_ms=start)
    return _json([sum(b.count for b in buckets if b.sum_ms is not None)])
