"""`powerhub inventory`: the PDUs, outlets and machines the store and `[[inventory.machines]]` know of, with what is
wrong: outlets that draw power but belong to no machine, machines with no source (or none that reports), and what
the alerts cannot judge: a phase or bank with no rating, a machine fed by two PDUs that are no pair, a PDU in
`[[inventory.pdus]]` that the store has never heard of."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hub.stores.base import SeriesInfo
from telemetry.inventory import Machine, PduRating, rating_a
from telemetry.series import BANK_PREFIX, PHASE_PREFIX, TOTAL_CHANNEL, is_outlet


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
class Input:
    """A phase or bank: its newest current and what it may carry (None: no rating, so no capacity alert)."""

    channel: str
    amps: float | None
    rating_a: float | None


@dataclass
class Pdu:
    site: str
    device: str
    total_w: float | None = None
    outlets: list[Outlet] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)


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
    unpaired: list[tuple[Machine, tuple[str, ...]]] = field(default_factory=list)  # dual-fed, PDUs not a pair
    unknown_pdus: list[PduRating] = field(default_factory=list)  # rated in the config, no series in the store

    @property
    def unrated(self) -> list[tuple[Pdu, Input]]:
        return [(p, i) for p in self.pdus for i in p.inputs if i.rating_a is None]

    @property
    def flagged(self) -> bool:
        return bool(self.unmapped or self.sourceless or self.unrated or self.unpaired or self.unknown_pdus)

    @property
    def unmapped(self) -> list[tuple[Pdu, Outlet]]:
        return [(p, o) for p in self.pdus for o in p.outlets if o.unmapped(self.min_w)]

    @property
    def sourceless(self) -> list[MachineReport]:
        return [m for m in self.machines if m.no_source]


def _numbers(channel: str) -> list[int]:
    """`outlet-2-10` -> [2, 10]: the numeric order of outlets, phases and banks (`outlet-10` after `outlet-9`)."""
    return [int(p) if p.isdigit() else 0 for p in channel.split("-")[1:]]


def _unpaired(machines: list[Machine], ratings: list[PduRating]) -> list[tuple[Machine, tuple[str, ...]]]:
    """Machines whose sources hang on two or more PDUs of which no two are a `pair`: the A/B check skips them."""
    pairs = {(r.site, frozenset((r.device, r.pair))) for r in ratings if r.pair}
    out = []
    for m in machines:
        devices = tuple(sorted({s.split(".", 1)[0] for s in m.sources if is_outlet(s.split(".", 1)[1])}))
        if len(devices) >= 2 and not any((m.site, frozenset((a, b))) in pairs
                                         for i, a in enumerate(devices) for b in devices[i + 1:]):
            out.append((m, devices))
    return out


def build(series: list[SeriesInfo], machines: list[Machine], min_w: float, now_ms: int | None = None,
          ratings: list[PduRating] | None = None) -> Report:
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    ratings = ratings or []
    rated = {(r.site, r.device): r for r in ratings}
    owner = {(m.site, source): m.name for m in machines for source in m.sources}
    latest: dict[tuple[str, str], float | None] = {}
    pdus: dict[tuple[str, str], Pdu] = {}
    for info in series:
        key, last = info.key, info.last
        value = last.number if last else None
        latest[(key.site, f"{key.device}.{key.channel}")] = value
        if key.channel.startswith((PHASE_PREFIX, BANK_PREFIX)):
            pdu = pdus.setdefault((key.site, key.device), Pdu(key.site, key.device))
            limit = last.field_number("limit_a") if last else None
            pdu.inputs.append(Input(key.channel, value, rating_a(rated.get((key.site, key.device)), key.channel,
                                                                 limit)))
            continue
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
    listed = [p for p in pdus.values() if p.outlets or p.inputs]
    for pdu in listed:
        pdu.outlets.sort(key=lambda o: _numbers(o.channel))
        pdu.inputs.sort(key=lambda i: (not i.channel.startswith(PHASE_PREFIX), _numbers(i.channel)))
    reports = [MachineReport(m, {s: latest.get((m.site, s)) for s in m.sources}) for m in machines]
    unknown = [r for r in ratings if (r.site, r.device) not in pdus]
    return Report(sorted(listed, key=lambda p: (p.site, p.device)), reports, min_w, _unpaired(machines, ratings),
                  unknown)



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
        for i in pdu.inputs:
            amps = "no data" if i.amps is None else f"{i.amps:.1f} A"
            if i.rating_a is None:
                rating = "  <- no rating: set rating_a (banks_a) in [[inventory.pdus]]"
            else:
                share = f" ({i.amps / i.rating_a:.0%})" if i.amps is not None else ""
                rating = f"  of {i.rating_a:g} A{share}"
            lines.append(f"    {i.channel:<12} {amps:>10}{rating}")
    for r in report.unknown_pdus:
        lines.append(f"  {r.site}.{r.device}  <- in [[inventory.pdus]], no series in the store")
    lines.append("Machines:" if report.machines else "Machines: none in [[inventory.machines]]")
    for m in report.machines:
        sources = ", ".join(f"{s} {_w(v)}" for s, v in m.readings.items()) or "(no sources listed)"
        flag = "  <- no source" if m.no_source else ""
        lines.append(f"  {m.machine.site}.{m.machine.name}  {sources}{flag}")
    for machine, devices in report.unpaired:
        fed = " and ".join(devices)
        lines.append(f"  {machine.site}.{machine.name}  <- fed by {fed}, no pair in [[inventory.pdus]]: no redundancy "
                     "check")
    unmapped, sourceless = len(report.unmapped), len(report.sourceless)
    lines.append(f"{unmapped} outlet(s) drawing >= {report.min_w:g} W with no machine; "
                 f"{sourceless} machine(s) with no source")
    if report.unrated or report.unpaired or report.unknown_pdus:
        lines.append(f"{len(report.unrated)} phase(s) or bank(s) with no rating; {len(report.unpaired)} dual-fed "
                     f"machine(s) on PDUs that are no pair; {len(report.unknown_pdus)} rated PDU(s) not in the store")
    return "\n".join(lines) + "\n"
