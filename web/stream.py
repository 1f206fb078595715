"""`/api/v1/stream`: server-sent events of live points, replaying stored ones after `Last-Event-ID`.

The listener is registered before the replay query, so a point arriving in between is not lost; points the
replay already sent are skipped when they come round live.
"""

from __future__ import annotations

import json
import logging
import queue
from collections.abc import Iterator

from flask import Blueprint, Response, request

from telemetry import Point
from telemetry.payload import END_TS_MS
from web import state
from web.errors import abort_json
from web.params import series_key

log = logging.getLogger(__name__)
bp = Blueprint("stream", __name__)

KEEPALIVE_S = 15.0
REPLAY_LIMIT = 20_000


def sse_event(p: Point) -> str:
    data = {"id": p.key.id, **p.to_wire()}
    return f"event: point\nid: {p.ts_ms}-{p.seq}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _last_event_ts() -> int | None:
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        return None
    ts, _, seq = raw.partition("-")
    if not ts.isdigit() or len(ts) > 15 or (seq and not seq.isdigit()):
        abort_json(400, "Last-Event-ID must be {ts}-{seq} as sent in the event ids")
    return int(ts)


@bp.get("/api/v1/stream")
def stream() -> Response:
    raw = request.args.get("series", "")
    keys = [series_key(s, must_exist=False) for s in raw.split(",") if s] if raw else None
    after_ts = _last_event_ts()
    st = state()
    live = st.live
    listener = live.listen(frozenset(k.id for k in keys) if keys is not None else None)
    request_addr = request.remote_addr

    def events() -> Iterator[str]:
        sent: dict[str, int] = {}
        try:
            yield "retry: 3000\n: connected\n\n"
            if after_ts is not None:
                for key in keys if keys is not None else st.store.series_keys():
                    for p in st.store.points(key, after_ts + 1, END_TS_MS, REPLAY_LIMIT):
                        sent[p.key.id] = p.ts_ms
                        yield sse_event(p)
            while not listener.dropped:
                try:
                    p = listener.points.get(timeout=KEEPALIVE_S)
                except queue.Empty:
                    yield ": keepalive\n\n"
                    continue
                if p.ts_ms > sent.get(p.key.id, -1):
                    sent[p.key.id] = p.ts_ms
                    yield sse_event(p)
            st.metrics.inc("powerhub_sse_dropped_total")  # it stopped reading and its queue filled
            log.warning("dropped an SSE client that stopped reading (%s)", request_addr)
        finally:
            live.unlisten(listener)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(events(), mimetype="text/event-stream", headers=headers)
