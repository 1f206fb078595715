"""`load_model`: power against CPU use. For each machine with a measured power (`{machine}.formula-power`, from
`machine_power`) and the `host_load` reader's `load-cpu-{group}` series on a device of the machine's name, fit
power = idle + k·cores (least squares over the last `window_days`, refit once a day) and store the model at the
day's start: `formula-model-idle` and `formula-model-k` (W per core) and the fit's error `formula-model-rmse`.

With a model, per `step_s` bucket of that day:
- a measured machine's power is attributed to its process groups by their CPU shares (PowerAPI's and Scaphandre's
  idea, anchored on a real measurement): `formula-group-{group}` = (power - idle) x the group's share of the cores,
  the idle power left to `formula-group-idle`;
- machines in `estimate` (load, no meter) get `formula-estimate` = idle + k·cores from the model of `model_from`.
"""

from __future__ import annotations

import math

from hub.formulas.base import Formula, derived, register
from hub.formulas.grid import grid_means
from hub.stores import Store
from telemetry import Point, SeriesKey
from telemetry.config import Section
from telemetry.inventory import Machine
from telemetry.names import NameError_
from telemetry.series import LOAD_CPU_PREFIX, formula_channel
from telemetry.timeunits import DAY_MS


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float, float] | None:
    """Least squares y = a + b·x: (a, b, root-mean-square error); None without enough spread in x."""
    n = len(xs)
    if n < 3:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 1e-9 * n:
        return None  # the load never changed: idle and slope cannot be told apart
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    rmse = math.sqrt(sum((a + b * x - y) ** 2 for x, y in zip(xs, ys, strict=True)) / n)
    return a, b, rmse


class LoadModel(Formula):
    name = "load_model"
    window_ms = DAY_MS
    min_interval_s = 600.0  # stream mode refits today's model at most this often

    def __init__(self, machines: list[Machine], estimate: dict[str, str], window_days: int, step_ms: int) -> None:
        self.sites = {m.name: m.site for m in machines}
        self.estimate = estimate  # machine without meter -> machine whose model it borrows
        self.window_days, self.step_ms = window_days, step_ms

    def is_input(self, key: SeriesKey) -> bool:
        measured = key.device in self.sites and key.channel == formula_channel("power")
        return measured or key.channel.startswith(LOAD_CPU_PREFIX)

    def _cores(self, store: Store, site: str, device: str, a: int, b: int) -> dict[str, dict[int, float]]:
        groups = [k for k in store.series_keys() if k.site == site and k.device == device
                  and k.channel.startswith(LOAD_CPU_PREFIX)]
        return {k.channel[len(LOAD_CPU_PREFIX):]: grid_means(store, k, a, b, self.step_ms) for k in groups}

    def _model(self, store: Store, site: str, machine: str, day: int) -> tuple[float, float, float] | None:
        a = day + DAY_MS - self.window_days * DAY_MS
        power = grid_means(store, SeriesKey(site, machine, formula_channel("power")), a, day + DAY_MS, self.step_ms)
        cores = self._cores(store, site, machine, a, day + DAY_MS)
        steps = [t for t in power if cores and all(t in g for g in cores.values())]
        return fit_line([sum(g[t] for g in cores.values()) for t in steps], [power[t] for t in steps])

    def compute(self, store: Store, start_ms: int, inputs: set[SeriesKey]) -> list[Point]:
        out: list[Point] = []
        models = {}
        for machine, site in sorted(self.sites.items()):
            model = self._model(store, site, machine, start_ms)
            if model is None:
                continue
            models[machine] = model
            idle, k, rmse = model
            for name, w in (("model-idle", idle), ("model-k", k), ("model-rmse", rmse)):
                out.append(derived(SeriesKey(site, machine, formula_channel(name)), start_ms, self.name, w=w))
            out += self._attribute(store, site, machine, idle, start_ms)
        for machine, source in sorted(self.estimate.items()):
            if source in models:
                out += self._estimate(store, self.sites.get(source, ""), machine, models[source], start_ms)
        return out

    def _attribute(self, store: Store, site: str, machine: str, idle: float, day: int) -> list[Point]:
        power = grid_means(store, SeriesKey(site, machine, formula_channel("power")), day, day + DAY_MS, self.step_ms)
        cores = self._cores(store, site, machine, day, day + DAY_MS)
        out = []
        for t, w in sorted(power.items()):
            total = sum(g.get(t, 0.0) for g in cores.values())
            if total <= 0 or not all(t in g for g in cores.values()):
                continue
            out.append(derived(SeriesKey(site, machine, formula_channel("group-idle")), t, self.name, w=min(idle, w)))
            for group, g in cores.items():
                try:
                    key = SeriesKey(site, machine, formula_channel(f"group-{group}"))
                except NameError_:
                    continue
                out.append(derived(key, t, self.name, w=max(0.0, w - idle) * g[t] / total))
        return out

    def _estimate(self, store: Store, site: str, machine: str, model: tuple[float, float, float],
                  day: int) -> list[Point]:
        idle, k, _ = model
        cores = self._cores(store, site, machine, day, day + DAY_MS)
        steps = sorted(set.intersection(*(set(g) for g in cores.values()))) if cores else []
        return [derived(SeriesKey(site, machine, formula_channel("estimate")), t, self.name,
                        w=idle + k * sum(g[t] for g in cores.values())) for t in steps]


@register("load_model")
def load_model(sec: Section, machines: list[Machine]) -> Formula:
    estimate = sec.str_map("estimate")
    known = {m.name for m in machines}
    for machine, source in estimate.items():
        if source not in known:
            raise sec.error(f"estimate.{machine}", f"{source!r} is no machine of [[inventory.machines]]")
    formula = LoadModel(machines, estimate, sec.integer("window_days", 7, min_value=1),
                        int(sec.number("step_s", 60.0, positive=True) * 1000))
    sec.finish()
    return formula
