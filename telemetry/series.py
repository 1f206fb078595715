"""The series vocabulary: what a channel's name says about its series (SPEC.md sections 1 and 3).

A series' measurement, unit and value field follow from its channel's name alone, so readers, formulas, stores, the
web and Home Assistant's discovery all decide them here. A formula that adds a kind of series adds it here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Measurement:
    """How a kind of series is stored and shown."""

    name: str  # the InfluxDB measurement (and the SQLite store's notion of it)
    unit: str  # shown by the API and the dashboard; "" when the numbers have none
    field: str  # the field that carries the series' value
    listed: bool = True  # False: the hub's own bookkeeping, never returned by `Store.series()`


POWER = Measurement("power", "W", "w")
LOAD = Measurement("load", "", "value")  # load average and cores in use: no unit shown
ENERGY = Measurement("energy", "kWh", "value")
CURRENT = Measurement("current", "A", "a")  # a PDU's input phases and breaker banks (SPEC.md section 1)
# The rollup formula's aggregates and pending marks: read only through `Store.rollup_buckets` and `Store.points`.
ROLLUP = Measurement("rollup", "", "value", listed=False)

MEASUREMENTS = {m.name: m for m in (POWER, LOAD, ENERGY, CURRENT, ROLLUP)}
LISTED = tuple(m.name for m in MEASUREMENTS.values() if m.listed)

# Channel names and prefixes with a meaning. Any other channel (`power`, `psu1`, a meter's own name) is power.
POWER_CHANNEL = "power"  # a meter's, a BMC's or a simulated device's power
TOTAL_CHANNEL = "total"  # a PDU's whole draw
OUTLET_PREFIX = "outlet-"  # a PDU outlet: outlet-N, or outlet-CORD-N on a multi-cord PDU
LOAD_PREFIX = "load"  # host load: `load`, `load-cpu-GROUP`
LOAD_CPU_PREFIX = "load-cpu-"  # the cores a process group uses
FORMULA_PREFIX = "formula-"  # a formula's result: formula-power, formula-unmetered, ...
ENERGY_PREFIX = "energy-"  # the energy formula's kWh: energy-hour-CHANNEL, energy-day-CHANNEL
ROLLUP_PREFIX = "rollup-"  # the rollup formula's rows (rollup-PERIOD-CHANNEL) and marks (rollup-due-CHANNEL)
PHASE_PREFIX = "phase-"  # a PDU's input phase or line (SPEC.md section 1): amps in `a`
BANK_PREFIX = "bank-"  # a PDU's breaker bank or branch circuit: amps in `a`
ENERGY_DAY_PREFIX = ENERGY_PREFIX + "day-"
ENERGY_HOUR_PREFIX = ENERGY_PREFIX + "hour-"
DERIVED_PREFIXES = (ENERGY_PREFIX, FORMULA_PREFIX, ROLLUP_PREFIX)  # written by formulas, never read as raw input


def measurement_of(channel: str) -> Measurement:
    if channel.startswith(LOAD_PREFIX):
        return LOAD
    if channel.startswith((PHASE_PREFIX, BANK_PREFIX)):
        return CURRENT
    if channel.startswith(ROLLUP_PREFIX):
        return ROLLUP
    return ENERGY if channel.startswith(ENERGY_PREFIX) else POWER


def unit_of(measurement: str) -> str:
    known = MEASUREMENTS.get(measurement)
    return known.unit if known is not None else ""


def _numbered(prefix: str, parts: tuple[int | str, ...]) -> str:
    return prefix + "-".join(map(str, parts))


def outlet_channel(*parts: int | str) -> str:
    """`outlet-7`, or `outlet-2-7` for cord 2's outlet 7."""
    return _numbered(OUTLET_PREFIX, parts)


def phase_channel(*parts: int | str) -> str:
    """`phase-2`, or `phase-2-1` for inlet (cord) 2's line 1."""
    return _numbered(PHASE_PREFIX, parts)


def bank_channel(*parts: int | str) -> str:
    return _numbered(BANK_PREFIX, parts)


def is_outlet(channel: str) -> bool:
    return channel.startswith(OUTLET_PREFIX)


def formula_channel(name: str) -> str:
    return FORMULA_PREFIX + name


def is_derived_channel(channel: str) -> bool:
    return channel.startswith(DERIVED_PREFIXES)
