"""`powerhub inventory`: the PDUs, outlets and machines the store and `[[inventory.machines]]` know of, with what is
wrong: outlets that draw power but belong to no machine, and machines with no source (or none that reports)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hub.stores.base import SeriesInfo
from telemetry.inventory import Machine
from telemetry.series import OUTLET_PREFIX, TOTAL_CHANNEL, is_outlet


@dataclass
class Outlet:
    channel: str
    name: str
    watts: float | None
    age_s: float | None
    machine: str | None

    def unmapped(self, min_w: float) -> bool:
        return self.machine is None and self.watts is not None and self.watts >= min_w


@dataclass
class Pdu:
    site: str
    device: str
    total_w: float | None = None
    outlets: list[Outlet] = field(default_factory=list)


@dataclass
class MachineReport:
    machine: Machine
    readings: dict[str, float | None]  # source -> latest main value; None when the store has no such series

    @property
    def no_source(self) -> bool:
        return not self.readings or all(v is None for v in self.readings.values())


@dataclass
class Report:
    pdus: list[Pdu]
    machines: list[MachineReport]
    min_w: float

    @property
    def unmapped(self) -> list[tuple[Pdu, Outlet]]:
        return [(p, o) for p in self.pdus for o in p.outlets if o.unmapped(self.min_w)]

    @property
    def sourceless(self) -> list[MachineReport]:
        return [m for m in self.machines if m.no_source]


def _outlet_number(channel: str) -> list[int]:
    return [int(p) if p.isdigit() else 0 for p in channel.removeprefix(OUTLET_PREFIX).split("-")]


def build(series: list[SeriesInfo], machines: list[Machine], min_w: float, now_ms: int | None = None) -> Report:
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    owner = {(m.site, source): m.name for m in machines for source in m.sources}
    latest: dict[tuple[str, str], float | None] = {}
    pdus: dict[tuple[str, str], Pdu] = {}
    for info in series:
        key, last = info.key, info.last
        value = last.number if last else None
        latest[(key.site, f"{key.device}.{key.channel}")] = value
        if not is_outlet(key.channel) and key.channel != TOTAL_CHANNEL:
            continue
        pdu = pdus.setdefault((key.site, key.device), Pdu(key.site, key.device))
        if key.channel == TOTAL_CHANNEL:
            pdu.total_w = value
            continue
        name = last.fields.get("name") if last else None
        pdu.outlets.append(Outlet(
            channel=key.channel, name=name if isinstance(name, str) else "", watts=value,
            age_s=(now_ms - last.ts_ms) / 1000 if last else None,
            machine=owner.get((key.site, f"{key.device}.{key.channel}")),
        ))
    # A device with only `total` is a meter, not a PDU (a household's main meter has no outlets).
    listed = [p for p in pdus.values() if p.outlets]
    for pdu in listed:
        pdu.outlets.sort(key=lambda o: _outlet_number(o.channel))
    reports = [MachineReport(m, {s: latest.get((m.site, s)) for s in m.sources}) for m in machines]
    return Report(sorted(listed, key=lambda p: (p.site, p.device)), reports, min_w)


def _w(value: float | None) -> str:
    return "no data" if value is None else f"{value:.1f} W"


def render(report: Report) -> str:
    lines = ["PDUs:"] if report.pdus else ["PDUs: none in the store"]
    for pdu in report.pdus:
        lines.append(f"  {pdu.site}.{pdu.device}  total {_w(pdu.total_w)}")
        for o in pdu.outlets:
            flag = "  <- draws power, no machine" if o.unmapped(report.min_w) else ""
            age = f"{o.age_s:.0f} s ago" if o.age_s is not None else ""
            lines.append(f"    {o.channel:<12} {o.name[:24]:<24} {_w(o.watts):>10}  {age:>10}  "
                         f"{o.machine or '-'}{flag}")
    lines.append("Machines:" if report.machines else "Machines: none in [[inventory.machines]]")
    for m in report.machines:
        sources = ", ".join(f"{s} {_w(v)}" for s, v in m.readings.items()) or "(no sources listed)"
        flag = "  <- no source" if m.no_source else ""
        lines.append(f"  {m.machine.site}.{m.machine.name}  {sources}{flag}")
    unmapped, sourceless = len(report.unmapped), len(report.sourceless)
    lines.append(f"{unmapped} outlet(s) drawing >= {report.min_w:g} W with no machine; "
                 f"{sourceless} machine(s) with no source")
    return "\n".join(lines) + "\n"
