"""`[[inventory.machines]]`: which machine hangs on which sources (PDU outlets, BMCs), for the agent (it tags points
with `machine`) and for `powerhub inventory` (it reports what is mapped and what is not)."""

from __future__ import annotations

from dataclasses import dataclass

from telemetry.config import Section, did_you_mean
from telemetry.names import NameError_, check_name


@dataclass(frozen=True)
class Machine:
    name: str
    site: str
    sources: tuple[str, ...]  # "device.channel" of the machine's site


INVENTORY_KEYS = ("agents", "hub", "machines")


def parse_machines(top: Section) -> list[Machine]:
    """Every `[[inventory.machines]]` entry; `agents` and `hub` are `powerhub mqtt-acl`'s, and checked there."""
    out: list[Machine] = []
    inventory = Section(top.data.get("inventory"), "inventory")
    for key in inventory.data:
        if key not in INVENTORY_KEYS:
            raise inventory.error(key, f"unknown key{did_you_mean(key, INVENTORY_KEYS)}")
    for sec in inventory.tables("machines"):
        name, site = sec.name("name"), sec.name("site")
        sources = sec.str_list("sources", [])
        for i, source in enumerate(sources):
            device, _, channel = source.partition(".")
            try:
                check_name("device", device)
                check_name("channel", channel)
            except NameError_ as exc:
                raise sec.error(f"sources[{i}]", f"must be device.channel: {exc}") from None
        sec.finish()
        out.append(Machine(name, site, tuple(sources)))
    return out


def machines_by_source(machines: list[Machine], site: str) -> dict[str, str]:
    """`{"device.channel": machine}` for one site: the agent's lookup when it stamps points."""
    return {source: m.name for m in machines if m.site == site for source in m.sources}
