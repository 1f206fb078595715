"""`/api/v1/series`, `/points`, `/history`, `/api/v1/alerts` (and its history), and `/healthz`, `/metrics` (SPEC.md
sections 4, 7)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, jsonify, request

from hub.formulas.base import TRUSTED_AFTER_MS, read_pending_from
from hub.formulas.rollup import PERIODS, pending_key, rollup_key
from hub.stores import Bucket, StoreUnavailable, merge_buckets
from telemetry import Point, SeriesKey
from telemetry.names import NameError_
from telemetry.series import unit_of
from telemetry.timeunits import DAY_MS, HOUR_MS, MINUTE_MS, now_ms
from web import HubUnavailable, state
from web.errors import abort_json
from web.params import query_int, series_key, time_range, zone_param

bp = Blueprint("api", __name__)

POINTS_LIMIT = 20_000
MAX_BUCKETS = 100_000
DEFAULT_HISTORY_POINTS = 1000
ALERT_HISTORY_LIMIT = 100
ALERT_HISTORY_MAX = 1000


@bp.get("/api/v1/series")
def series() -> Response:
    """SPEC's fields, and what the hub knows of the agent publishing the series: `agent`, `online`, and `gaps`
    (seqs of that agent not stored yet: its points in flight or lost; null when the hub is not known)."""
    owner = {(a["site"], d): a for a in state().agents() for d in a.get("devices", [])}
    out = []
    for info in state().store.series():
        key, last = info.key, info.last
        main = key.main_field
        agent = owner.get((key.site, key.device))
        out.append({
            "id": key.id, "site": key.site, "device": key.device, "channel": key.channel,
            "unit": unit_of(key.measurement),
            "last": None if last is None else {"ts": last.ts_ms, main: last.number},
            "agent": agent["agent"] if agent else None,
            "online": agent["online"] if agent else None,
            "gaps": agent["gaps"] if agent else None,
            "machine": _machine(last),
        })
    return jsonify(out)


def _machine(last: Point | None) -> str | None:
    machine = last.fields.get("machine") if last else None
    return machine if isinstance(machine, str) else None


@bp.get("/api/v1/series/<series_id>/points")
def points(series_id: str) -> Response:
    key = series_key(series_id)
    from_ms, to_ms = time_range()
    limit = query_int("limit", POINTS_LIMIT)
    assert limit is not None
    if not 1 <= limit <= POINTS_LIMIT:
        abort_json(400, f"limit must be between 1 and {POINTS_LIMIT}")
    rows = state().store.points(key, from_ms, to_ms, limit)
    resp = jsonify([[p.ts_ms, p.number] for p in rows])
    if len(rows) == limit:
        resp.headers["X-Next-From"] = str(rows[-1].ts_ms + 1)
    return resp


MAX_LOCAL_DAY_BUCKETS = 1000


def bucket_json(b: Bucket, step_ms: int) -> dict[str, Any]:
    # Blink meters: exact energy of the blinks. Sampled series: mean power over the bucket's duration.
    wh = b.blink_wh if b.blink_wh is not None else b.mean * step_ms / HOUR_MS
    return {"ts": b.start_ms, "mean_w": b.mean, "min_w": b.min, "max_w": b.max, "count": b.count, "wh": wh}


@bp.get("/api/v1/series/<series_id>/history")
def history(series_id: str) -> Response:
    key = series_key(series_id)
    from_ms, to_ms = time_range()
    step_ms = query_int("step", None)
    n_points = query_int("points", None)
    if step_ms is not None and n_points is not None:
        abort_json(400, "give step or points, not both")
    if step_ms is None:
        n = DEFAULT_HISTORY_POINTS if n_points is None else n_points
        if not 1 <= n <= MAX_BUCKETS:
            abort_json(400, f"points must be between 1 and {MAX_BUCKETS}")
        step_ms = _auto_step(to_ms - from_ms, n)
    if step_ms < 1:
        abort_json(400, "step must be at least 1 ms")
    if (to_ms - from_ms) / step_ms > MAX_BUCKETS:
        abort_json(400, f"step too small: at most {MAX_BUCKETS} buckets per request")
    tz = zone_param() if request.args.get("tz") else None
    if tz is not None and step_ms % DAY_MS == 0:
        return jsonify(_local_days(key, from_ms, to_ms, step_ms // DAY_MS, tz))
    origin_ms = 0 if tz is None else _utc_offset_ms(tz, from_ms)  # hours and minutes on the viewer's clock
    buckets = _from_rollups(key, from_ms, to_ms, step_ms, origin_ms)
    if buckets is None:
        buckets = state().store.buckets(key, from_ms, to_ms, step_ms, origin_ms)
    return jsonify([bucket_json(b, step_ms) for b in buckets])


def _auto_step(span_ms: int, n: int) -> int:
    """The step for `points=n`: whole minutes or hours from a minute on, so the rollups can answer."""
    step = max(1, math.ceil(span_ms / n))
    for period in (HOUR_MS, MINUTE_MS):
        if step >= period:
            return math.ceil(step / period) * period
    return step


def _from_rollups(key: SeriesKey, from_ms: int, to_ms: int, step_ms: int, origin_ms: int) -> list[Bucket] | None:
    """Buckets from the hub's minute or hour rollups where they are whole and settled, and from the raw points
    after that: rollups answer for whole periods, aligned with the buckets, that ended TRUSTED_AFTER_MS ago and
    that the hub has not marked pending (hub.formulas.base), so an answer never counts fewer points than were
    stored before it was asked, however far the rollups lag (a backlog, a late point, the live minute). None: the
    raw points answer everything."""
    store = state().store
    try:
        mark = pending_key(key)
    except NameError_:
        return None
    settled_ms = min(to_ms, now_ms() - TRUSTED_AFTER_MS)
    pending_from = read_pending_from(store, mark)
    if pending_from is not None:
        settled_ms = min(settled_ms, pending_from)
    for period, period_ms in reversed(PERIODS):  # the coarsest first
        if step_ms % period_ms or (from_ms - origin_ms) % period_ms:
            continue
        split_ms = settled_ms // period_ms * period_ms  # rows before it are whole and settled
        if split_ms <= from_ms:
            return None
        rolled = rollup_key(key, period)
        # The rollups answer if they begin where the range's points do: their first row is found in a series
        # thousands of times smaller, and the raw points are only looked at before it (usually no span at all).
        first_row = store.points(rolled, from_ms, split_ms, 1)
        begins = first_row[0].ts_ms if first_row else split_ms
        if begins > from_ms and store.points(key, from_ms, begins, 1):
            continue
        rows = store.rollup_buckets(rolled, from_ms, split_ms, step_ms, origin_ms) if first_row else []
        raw = store.buckets(key, split_ms, to_ms, step_ms, origin_ms) if split_ms < to_ms else []
        return merge_buckets(rows, raw)
    return None


def _utc_offset_ms(tz: ZoneInfo, at_ms: int) -> int:
    offset = datetime.fromtimestamp(at_ms / 1000, tz).utcoffset()
    return -int(offset.total_seconds() * 1000) if offset else 0


def _local_days(key: SeriesKey, from_ms: int, to_ms: int, days: int, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Buckets of `days` local days each, from local midnight to local midnight: 23 or 25 hours across a DST change,
    which fixed-length steps would get wrong."""
    if (to_ms - from_ms) / (days * DAY_MS) > MAX_LOCAL_DAY_BUCKETS:
        abort_json(400, f"at most {MAX_LOCAL_DAY_BUCKETS} day buckets per request with tz")
    start = datetime.fromtimestamp(from_ms / 1000, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    while (a := int(start.timestamp() * 1000)) < to_ms:
        end = start + timedelta(days=days)  # wall-clock arithmetic: the next local midnight, DST or not
        lo, hi = max(a, from_ms), min(int(end.timestamp() * 1000), to_ms)
        for bucket in state().store.buckets(key, lo, hi, hi - lo, origin_ms=lo):
            out.append({**bucket_json(bucket, hi - lo), "ts": a})
        start = end
    return out


@bp.get("/api/v1/alerts")
def alerts() -> Response:
    """What fires now, from the hubs' retained alert topics (web.alerts)."""
    board = state().alerts
    if board.mqtt is None:
        return jsonify([])  # no broker (web.live = false): no alerts to read
    try:
        return jsonify(board.firing())
    except TimeoutError as exc:
        abort_json(503, f"alerts unavailable: {exc}")


@bp.get("/api/v1/alerts/history")
def alert_history() -> Response:
    """Every firing and resolution, newest first (of one subject with `subject`), from the hub that keeps them:
    `web.hub_url`, or the demo's own hub."""
    limit = query_int("limit", ALERT_HISTORY_LIMIT)
    assert limit is not None
    if not 1 <= limit <= ALERT_HISTORY_MAX:
        abort_json(400, f"limit must be 1 to {ALERT_HISTORY_MAX}, not {limit}")
    subject = request.args.get("subject") or None
    source = state().alert_history
    if source is None:
        abort_json(503, "alerts history unavailable: set web.hub_url to the hub's endpoint (hub.listen)")
    try:
        return jsonify(source(subject, limit))
    except HubUnavailable as exc:
        abort_json(503, f"alerts history unavailable: {exc}")


@bp.get("/healthz")
def healthz() -> Response:
    try:
        state().store.ping()
    except StoreUnavailable as exc:
        abort_json(503, f"store unavailable: {exc}")  # the one error shape, like every route's
    return jsonify({"ok": True, "store": state().store_config.url.split("://")[0], "sse_clients": state().live.clients})


@bp.get("/metrics")
def metrics() -> Response:
    st = state()
    st.metrics.set("powerhub_sse_clients", st.live.clients)
    return Response(st.metrics.render(), mimetype="text/plain; version=0.0.4")


@bp.after_app_request
def count_requests(resp: Response) -> Response:
    if request.endpoint:
        state().metrics.inc("powerhub_http_requests_total", endpoint=request.endpoint, status=str(resp.status_code))
    return resp
