"""`/api/v1/series`, `/points`, `/history`, and `/healthz`, `/metrics` (SPEC.md section 4)."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, jsonify, request

from hub.stores import Bucket, StoreUnavailable
from web import state
from web.errors import abort_json
from web.params import query_int, series_key, time_range

bp = Blueprint("api", __name__)

POINTS_LIMIT = 20_000
MAX_BUCKETS = 100_000
DEFAULT_HISTORY_POINTS = 1000


def unit_of(measurement: str) -> str:
    return "W" if measurement == "power" else ""


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
        })
    return jsonify(out)


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


def bucket_json(b: Bucket, step_ms: int) -> dict[str, Any]:
    # Blink meters: exact energy of the blinks. Sampled series: mean power over the bucket's duration.
    wh = b.blink_wh if b.blink_wh is not None else b.mean * step_ms / 3_600_000
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
        step_ms = max(1, math.ceil((to_ms - from_ms) / n))
    if step_ms < 1:
        abort_json(400, "step must be at least 1 ms")
    if (to_ms - from_ms) / step_ms > MAX_BUCKETS:
        abort_json(400, f"step too small: at most {MAX_BUCKETS} buckets per request")
    buckets = state().store.buckets(key, from_ms, to_ms, step_ms)
    return jsonify([bucket_json(b, step_ms) for b in buckets])


@bp.get("/healthz")
def healthz() -> Response | tuple[Response, int]:
    try:
        state().store.ping()
    except StoreUnavailable as exc:
        return jsonify({"ok": False, "error": str(exc)}), 503
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
