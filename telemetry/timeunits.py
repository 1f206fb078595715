"""Time units in milliseconds, the unit of every `ts` on the wire and in the stores (SPEC.md section 2), and the
wall clock in those units. Every module takes them from here instead of spelling `3_600_000` again."""

from __future__ import annotations

import datetime as dt
import functools
import time
import zoneinfo

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


def now_ms() -> int:
    """The wall clock in Unix milliseconds (the agent stamps with its own monotonic clock: edge_agent.clock)."""
    return time.time_ns() // 1_000_000


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def time_zone(name: str) -> zoneinfo.ZoneInfo:
    """An IANA time zone by name; ValueError for anything else (checked against the list first: ZoneInfo would try
    any string as a file name)."""
    if name not in _zone_names():
        raise ValueError(f"must be an IANA time zone such as Europe/Copenhagen, not {name[:60]!r}")
    return zoneinfo.ZoneInfo(name)


def local_day(text: str, tz: dt.tzinfo = dt.UTC) -> tuple[int, int]:
    """`YYYY-MM-DD` -> that day's half-open range in Unix ms, from local midnight to the next local midnight (23 or
    25 hours across a DST change); ValueError when it is no date."""
    try:
        day = dt.datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise ValueError("date must be YYYY-MM-DD") from None
    start, end = day.replace(tzinfo=tz), (day + dt.timedelta(days=1)).replace(tzinfo=tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)
