"""`rollup`: per power or load series, one row per minute (`rollup-1m-{channel}`) and per hour (`rollup-1h-{channel}`)
holding count, sum, min and max of the value (and of `ms`, and the blinks' energy, for blink meters). `/history`
answers long ranges from these (a year at 1,000 points reads 8,760 hourly rows, not 3 million points) when its step
is a whole number of minutes or hours; `powerhub formula rollup --from --to` builds them for data stored before.
"""

from __future__ import annotations

from hub.formulas.base import Formula, derived, is_derived, register
from hub.stores import Bucket, Store
from telemetry import Point, SeriesKey
from telemetry.config import Section
from telemetry.inventory import Machine
from telemetry.names import NameError_
from telemetry.series import LOAD, POWER, ROLLUP_PREFIX
from telemetry.timeunits import HOUR_MS, MINUTE_MS

PERIODS = (("1m", MINUTE_MS), ("1h", HOUR_MS))


def rollup_key(key: SeriesKey, period: str) -> SeriesKey:
    return SeriesKey(key.site, key.device, f"{ROLLUP_PREFIX}{period}-{key.channel}")


def pending_key(key: SeriesKey) -> SeriesKey:
    """Where the runner marks the series' minutes waiting to be rolled up (hub.formulas.base, PENDING_FIELD)."""
    return SeriesKey(key.site, key.device, f"{ROLLUP_PREFIX}due-{key.channel}")


def _row(key: SeriesKey, b: Bucket, name: str) -> Point:
    fields = {"n": float(b.count), "sum_w": b.mean * b.count, "min_w": b.min, "max_w": b.max}
    if b.sum_ms is not None:
        fields.update(sum_ms=float(b.sum_ms), min_ms=float(b.min_ms or 0), max_ms=float(b.max_ms or 0),
                      blink_wh=b.blink_wh or 0.0)
    return derived(key, b.start_ms, name, **fields)


def _hours(minutes: list[Bucket]) -> list[Bucket]:
    by_hour: dict[int, list[Bucket]] = {}
    for b in minutes:
        by_hour.setdefault(b.start_ms // HOUR_MS * HOUR_MS, []).append(b)
    return [Bucket.combined(start, parts) for start, parts in sorted(by_hour.items())]


class Rollup(Formula):
    """Recomputed a minute at a time: a live series' current minute is read again (60 points at 1 s), not its
    current hour (up to 3,600, twice, every time it was recomputed). Each hour row is then made from the minutes
    just computed and the hour's other minute rows as stored."""

    name = "rollup"
    window_ms = MINUTE_MS
    min_interval_s = 30.0  # the current minute's rows are rewritten at most this often while points arrive
    marks_pending = True  # /history answers from these rows

    def is_input(self, key: SeriesKey) -> bool:
        return key.measurement in (POWER.name, LOAD.name) and not is_derived(key)

    def pending_key(self, key: SeriesKey) -> SeriesKey | None:
        try:
            return pending_key(key)
        except NameError_:
            return None  # a channel name too long to prefix has no rollups either

    def compute(self, store: Store, start_ms: int, inputs: set[SeriesKey]) -> list[Point]:
        return self.compute_range(store, start_ms, start_ms + MINUTE_MS, inputs)

    def compute_range(self, store: Store, from_ms: int, to_ms: int, inputs: set[SeriesKey]) -> list[Point]:
        """Minutes covering `[from_ms, to_ms)`, one query per series, and the hours they fall in. A backlog's run
        spans whole hours, so only a live minute's hour reads stored minute rows (at most 59 per series)."""
        start, end = from_ms // MINUTE_MS * MINUTE_MS, -(-to_ms // MINUTE_MS) * MINUTE_MS
        hour_start, hour_end = start // HOUR_MS * HOUR_MS, -(-end // HOUR_MS) * HOUR_MS
        out: list[Point] = []
        for key in sorted(inputs):
            try:
                minute_key, hour_key = (rollup_key(key, period) for period, _ in PERIODS)
            except NameError_:
                continue  # a channel name too long to prefix: its history is computed from the raw points
            minutes = store.buckets(key, start, end, MINUTE_MS)
            out += [_row(minute_key, b, self.name) for b in minutes]
            others = [] if (hour_start, hour_end) == (start, end) else [
                b for b in store.rollup_buckets(minute_key, hour_start, hour_end, MINUTE_MS)
                if not start <= b.start_ms < end]  # one query, not one each side
            out += [_row(hour_key, b, self.name) for b in _hours(others + minutes)]
        return out


@register("rollup")
def rollup(sec: Section, _machines: list[Machine]) -> Formula:
    sec.finish()
    return Rollup()
