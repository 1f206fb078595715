"""`simulated`: a household that looks real on a graph, for the demo and for load tests.

A base load, a fridge compressor cycling, a 2 kW coffee maker every 13-15 minutes and a washing machine's ~100 W
ripple, as blinks (like a pulse meter: `w` and `ms`) or as sampled watts (like a BMC: `w`).
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass

from edge_agent.readers.base import Reader, ReaderContext, register
from edge_agent.readers.blip_serial import blink_watts
from telemetry.config import Section
from telemetry.series import POWER_CHANNEL


class HouseProfile:
    """Power in watts as a function of time in seconds; seeded, so a test sees the same house twice."""

    def __init__(self, seed: int = 1) -> None:
        rng = random.Random(seed)
        self.base_w = 180.0 + rng.uniform(-30, 30)
        self.fridge_period_s = rng.uniform(2400, 3000)
        self.coffee_times_s = [0.0]
        for _ in range(2000):  # ~20 days of brews; the schedule then repeats
            self.coffee_times_s.append(self.coffee_times_s[-1] + rng.uniform(13 * 60, 15 * 60))
        self.cycle_s = self.coffee_times_s[-1]
        self.rng = rng

    def watts(self, t_s: float) -> float:
        w = self.base_w + 8 * math.sin(t_s / 97)
        if (t_s % self.fridge_period_s) < self.fridge_period_s * 0.4:
            w += 110 + 15 * math.exp(-(t_s % self.fridge_period_s) / 20)  # start-up surge
        brew = t_s % self.cycle_s
        if brew - self.coffee_times_s[bisect.bisect_right(self.coffee_times_s, brew) - 1] < 150:
            w += 2000.0
        washer = t_s % 7200
        if washer < 3600:
            w += 100 * (1 + math.sin(washer * 2 * math.pi / 55)) / 2 + 40
        return w


@register("simulated")
@dataclass
class SimulatedReader(Reader):
    device: str
    mode: str = "blips"
    interval_s: float = 1.0
    imp_per_kwh: float = 10_000.0
    seed: int = 1
    count: int | None = None

    @classmethod
    def from_config(cls, sec: Section) -> SimulatedReader:
        return cls(
            device=sec.name("device"),
            mode=sec.string("mode", "blips", choices=("blips", "watts")),
            interval_s=sec.number("interval_s", 1.0, positive=True),
            imp_per_kwh=sec.number("imp_per_kwh", 10_000.0, positive=True),
            seed=sec.integer("seed", 1),
            count=sec.integer("count", None, min_value=1),
        )

    def run(self, ctx: ReaderContext) -> None:
        profile = HouseProfile(self.seed)
        if self.mode == "watts":
            self._run_watts(profile, ctx)
        else:
            self._run_blips(profile, ctx)
        ctx.stop.wait()  # `count` reached: this reader is done, the agent goes on

    def _more(self, n: int) -> bool:
        return self.count is None or n < self.count

    def _run_watts(self, profile: HouseProfile, ctx: ReaderContext) -> None:
        n = 0
        while self._more(n) and not ctx.stop.wait(self.interval_s):
            n += 1
            now_ms = ctx.now_ms()
            w = profile.watts(now_ms / 1000) * (1 + profile.rng.gauss(0, 0.005))
            ctx.emit(self.device, POWER_CHANNEL, {"w": round(w, 2)}, now_ms)

    def _run_blips(self, profile: HouseProfile, ctx: ReaderContext) -> None:
        """Wait one blink's worth of energy at the current power, then report the interval as an Arduino would."""
        joules_per_blink = 3_600_000 / self.imp_per_kwh
        last_ms = ctx.now_ms()
        n = 0
        while self._more(n):
            n += 1
            wait_s = joules_per_blink / profile.watts(last_ms / 1000)
            if ctx.stop.wait(wait_s):
                return
            now_ms = ctx.now_ms()
            ms = max(1, now_ms - last_ms)
            ctx.emit(self.device, POWER_CHANNEL, {"w": blink_watts(ms, self.imp_per_kwh, 1.0), "ms": ms}, now_ms)
            last_ms = now_ms
