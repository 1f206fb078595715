"""`reconcile`: per site, the main meter's power minus everything metered below it: `{site}.site.formula-unmetered`
is what no other meter sees (cooling, lights, losses; negative means a meter or the mapping is wrong).

`[formulas.reconcile] main = { lab = "mainmeter.power" }` names each site's main meter; `below = { lab = [...] }` the
sources under it (default: every other power series of the site that is no PDU outlet, as a PDU's `total` already
holds its outlets)."""

from __future__ import annotations

from hub.formulas.base import Formula, derived, is_derived, register
from hub.formulas.grid import grid_means, parse_source
from hub.stores import Store
from telemetry import Point, SeriesKey
from telemetry.config import Section
from telemetry.inventory import Machine
from telemetry.names import NameError_
from telemetry.series import POWER, formula_channel, is_outlet

WINDOW_MS = 600_000


class Reconcile(Formula):
    name = "reconcile"
    window_ms = WINDOW_MS

    def __init__(self, main: dict[str, SeriesKey], below: dict[str, list[SeriesKey]], step_ms: int) -> None:
        self.main, self.below, self.step_ms = main, below, step_ms

    def _below(self, store: Store, site: str) -> list[SeriesKey]:
        if site in self.below:
            return self.below[site]
        return [k for k in store.series_keys() if k.site == site and k.measurement == POWER.name
                and k != self.main[site] and not is_derived(k) and not is_outlet(k.channel)]

    def is_input(self, key: SeriesKey) -> bool:
        return key.site in self.main and key.measurement == POWER.name and not is_derived(key)

    def compute(self, store: Store, start_ms: int, inputs: set[SeriesKey]) -> list[Point]:
        out: list[Point] = []
        end_ms = start_ms + WINDOW_MS
        for site in sorted({k.site for k in inputs} & set(self.main)):
            main = grid_means(store, self.main[site], start_ms, end_ms, self.step_ms)
            below = [grid_means(store, k, start_ms, end_ms, self.step_ms) for k in self._below(store, site)]
            for ts, w in sorted(main.items()):
                if all(ts in b for b in below):  # a meter below that has no reading would inflate the remainder
                    out.append(derived(SeriesKey(site, "site", formula_channel("unmetered")), ts, self.name,
                                       w=w - sum(b[ts] for b in below)))
        return out


@register("reconcile")
def reconcile(sec: Section, _machines: list[Machine]) -> Formula:
    main: dict[str, SeriesKey] = {}
    below: dict[str, list[SeriesKey]] = {}
    try:
        for site, source in sec.str_map("main").items():
            main[site] = parse_source(site, source)
        for site, sources in sec.table("below").data.items():
            if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
                raise sec.error(f"below.{site}", "must be a list of device.channel")
            below[site] = [parse_source(site, s) for s in sources]
    except NameError_ as exc:
        raise sec.error("main", f"sources are device.channel: {exc}") from None
    if not main:
        raise sec.error("main", "name each site's main meter: main = { site = \"device.channel\" }")
    formula = Reconcile(main, below, int(sec.number("step_s", 60.0, positive=True) * 1000))
    sec.finish()
    return formula
