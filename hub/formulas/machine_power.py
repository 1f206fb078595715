"""`machine_power`: a machine's power from the sources `[[inventory.machines]]` gives it, on a grid of `step_s`:
`{machine}.formula-power` is the sum of its PDU outlets (all of them, or the bucket is left out: one PSU missing is
not half the power) or else its BMC's reading; where both exist, `{machine}.formula-psu-loss` is outlets minus BMC
(the power supplies' loss, or a sign that the inventory maps the wrong outlet)."""

from __future__ import annotations

from hub.formulas.base import Formula, derived, register
from hub.formulas.grid import grid_means, parse_source
from hub.stores import Store
from telemetry import Point, SeriesKey
from telemetry.config import Section
from telemetry.inventory import Machine
from telemetry.series import formula_channel, is_outlet

WINDOW_MS = 600_000


class MachinePower(Formula):
    name = "machine_power"
    window_ms = WINDOW_MS

    def __init__(self, machines: list[Machine], step_ms: int) -> None:
        self.step_ms = step_ms
        self.machines = [m for m in machines if m.sources]
        self.sources = {m.name: [parse_source(m.site, s) for s in m.sources] for m in self.machines}
        self.inputs = {k for keys in self.sources.values() for k in keys}

    def is_input(self, key: SeriesKey) -> bool:
        return key in self.inputs

    def compute(self, store: Store, start_ms: int, inputs: set[SeriesKey]) -> list[Point]:
        out: list[Point] = []
        end_ms = start_ms + WINDOW_MS
        for m in self.machines:
            keys = self.sources[m.name]
            if not inputs.intersection(keys):
                continue
            outlets = [grid_means(store, k, start_ms, end_ms, self.step_ms) for k in keys
                       if is_outlet(k.channel)]
            others = [grid_means(store, k, start_ms, end_ms, self.step_ms) for k in keys
                      if not is_outlet(k.channel)]
            bmc = others[0] if others else {}
            for ts in range(start_ms, end_ms, self.step_ms):
                summed = sum(o[ts] for o in outlets) if outlets and all(ts in o for o in outlets) else None
                power = summed if summed is not None else bmc.get(ts)
                if power is not None:
                    out.append(derived(SeriesKey(m.site, m.name, formula_channel("power")), ts, self.name, w=power))
                if summed is not None and ts in bmc:
                    out.append(derived(SeriesKey(m.site, m.name, formula_channel("psu-loss")), ts, self.name,
                                       w=summed - bmc[ts]))
        return out


@register("machine_power")
def machine_power(sec: Section, machines: list[Machine]) -> Formula:
    formula = MachinePower(machines, int(sec.number("step_s", 60.0, positive=True) * 1000))
    sec.finish()
    return formula
