"""`energy`: power integrated into kWh per hour (`energy-hour-{channel}`) and per day in the site's time zone
(`energy-day-{channel}`), for every power series.

A blink's watts are its mean over its own interval (`ms`), so a blink meter's energy is exact, however long the
interval. A sampled series' watts hold back to the previous point, unless that is more than `gap_s` away: a gap (an
agent that was down) is not energy. Across an agent restart nothing is counted twice: it is a function of the stored
points, and a point is stored once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hub.formulas.base import Formula, derived, register
from hub.stores import Store
from telemetry import Point, SeriesKey
from telemetry.config import Section
from telemetry.inventory import Machine
from telemetry.names import NameError_
from telemetry.series import ENERGY_DAY_PREFIX, ENERGY_HOUR_PREFIX, POWER
from telemetry.timeunits import HOUR_MS, time_zone

log = logging.getLogger(__name__)

MAX_POINTS = 10**6


def energy_kwh(points: Iterable[Point], start_ms: int, end_ms: int, gap_ms: int) -> float | None:
    """kWh in `[start_ms, end_ms)` from points in time order; None when no interval reaches into the window."""
    total, touched, prev_ts = 0.0, False, None
    for p in points:
        w = p.watts
        if w is None:
            continue
        ms = p.fields.get("ms")
        if isinstance(ms, int) and not isinstance(ms, bool) and ms > 0:
            lo: int | None = p.ts_ms - ms
        elif prev_ts is not None and p.ts_ms - prev_ts <= gap_ms:
            lo = prev_ts
        else:
            lo = None  # the first point, or the first after a gap: it holds no interval we know
        prev_ts = p.ts_ms
        if lo is not None and (overlap := min(p.ts_ms, end_ms) - max(lo, start_ms)) > 0:
            total += w * overlap
            touched = True
    return total / 3_600_000_000 if touched else None


class EnergyFormula(Formula):
    name = "energy"
    window_ms = HOUR_MS

    def __init__(self, gap_ms: int, tz: ZoneInfo, site_tz: dict[str, ZoneInfo] | None = None) -> None:
        self.gap_ms, self.tz, self.site_tz = gap_ms, tz, site_tz or {}
        self.reach_ms = max(gap_ms, HOUR_MS)  # a blink's interval may reach far back

    def is_input(self, key: SeriesKey) -> bool:
        # Derived power (a machine's, a site's unmetered remainder) has energy too: per machine and per site.
        return key.measurement == POWER.name

    def compute(self, store: Store, start_ms: int, inputs: set[SeriesKey]) -> list[Point]:
        out: list[Point] = []
        for key in sorted(inputs):
            pts = store.points(key, start_ms - self.reach_ms, start_ms + HOUR_MS + self.reach_ms, MAX_POINTS)
            kwh = energy_kwh(pts, start_ms, start_ms + HOUR_MS, self.gap_ms)
            if kwh is None:
                continue
            try:
                hour = SeriesKey(key.site, key.device, ENERGY_HOUR_PREFIX + key.channel)
                day = SeriesKey(key.site, key.device, ENERGY_DAY_PREFIX + key.channel)
            except NameError_:
                log.warning("energy: channel %s is too long for a derived series name; skipped", key.id)
                continue
            out.append(derived(hour, start_ms, self.name, value=kwh))
            out.append(self._day(store, hour, day, start_ms, kwh))
        return out

    def _day(self, store: Store, hour: SeriesKey, day: SeriesKey, start_ms: int, kwh: float) -> Point:
        """The local day's total: its stored hours, with this hour's new value in place of the stored one."""
        tz = self.site_tz.get(day.site, self.tz)
        local = datetime.fromtimestamp(start_ms / 1000, tz).replace(hour=0, minute=0, second=0, microsecond=0)
        a, b = int(local.timestamp() * 1000), int((local + timedelta(days=1)).timestamp() * 1000)
        hours = {p.ts_ms: p.number or 0.0 for p in store.points(hour, a, b, 100)}
        hours[start_ms] = kwh
        return derived(day, a, self.name, value=sum(hours.values()))


def _zone(sec: Section, key: str, name: str) -> ZoneInfo:
    try:
        return time_zone(name)
    except ValueError as exc:
        raise sec.error(key, str(exc)) from None


@register("energy")
def energy(sec: Section, _machines: list[Machine]) -> Formula:
    """`tz = "Europe/Copenhagen"` for every site, or `tz = { lab = "Europe/Copenhagen", ... }` per site (UTC else)."""
    raw = sec.data.get("tz", "UTC")
    if isinstance(raw, dict):
        site_tz = {site: _zone(sec, f"tz.{site}", str(name)) for site, name in sec.str_map("tz").items()}
        default = ZoneInfo("UTC")
    else:
        site_tz, default = {}, _zone(sec, "tz", sec.string("tz", "UTC"))
    formula = EnergyFormula(int(sec.number("gap_s", 300.0, positive=True) * 1000), default, site_tz)
    sec.finish()
    return formula
