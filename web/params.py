"""Request parameters and series lookup, with the 400/404 answers every route shares."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import request

from telemetry import SeriesKey, parse_series_id
from telemetry.names import NameError_
from telemetry.timeunits import DAY_MS, now_ms, time_zone
from web import state
from web.errors import abort_json

MAX_DIGITS = 15  # blipserver's bound on numeric path parts; also keeps every time well inside int64


def whole_number(name: str, text: str) -> int:
    """A non-negative whole number of at most 15 digits, or 400."""
    if not text.isascii() or not text.isdigit():
        abort_json(400, f"{name} must be a whole number, not {text[:40]!r}")
    if len(text) > MAX_DIGITS:
        abort_json(400, f"{name} must have at most {MAX_DIGITS} digits")
    return int(text)


def query_int(name: str, default: int | None) -> int | None:
    """A numeric query parameter: absent is the default; empty, repeated or not a whole number is a 400."""
    values = request.args.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        abort_json(400, f"give {name} once")
    return whole_number(name, values[0])


def zone_param() -> ZoneInfo:
    """`tz`: an IANA time zone (default UTC), or 400."""
    name = request.args.get("tz") or "UTC"
    try:
        return time_zone(name)
    except ValueError as exc:
        abort_json(400, f"tz {exc}")


def time_range() -> tuple[int, int]:
    """`from`/`to` of /api/v1 routes: half-open, `to` defaults to now, `from` to 24 h before `to`."""
    to_ms = query_int("to", None)
    to_ms = now_ms() if to_ms is None else to_ms
    from_ms = query_int("from", None)
    from_ms = to_ms - DAY_MS if from_ms is None else from_ms
    if from_ms >= to_ms:
        abort_json(400, "from must be before to")
    return from_ms, to_ms


def series_key(series_id: str, must_exist: bool = True) -> SeriesKey:
    """The series named by an id, or 404 when the store has no such series (400 when the id is malformed).

    Live routes pass `must_exist=False`: waiting for a series' first point is a fair request."""
    try:
        key = parse_series_id(series_id)
    except NameError_ as exc:
        abort_json(400, str(exc))
    if not must_exist:
        return key
    st = state()
    if key.id not in st.known_series() and key.id not in st.known_series(refresh=True):
        abort_json(404, f"unknown series {series_id!r}")
    return key
