"""`host_load`: the host's load averages (`load1`, `load5`, `load15`) and the CPU used per process group.

A process group is a set of command names (`process_groups = { db = ["postgres"] }`); every process in none of
them counts as `other`. Each poll emits `load-cpu-{group}` with `value` = CPU cores used since the previous poll
(1.0 = one core fully busy), which is what power attribution by CPU share needs. Read from /proc, no extra library.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.readers.base import Reader, ReaderContext, register
from telemetry.config import Section
from telemetry.names import NameError_, check_name
from telemetry.series import LOAD_CPU_PREFIX

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OTHER = "other"


def read_process_ticks(proc: Path = Path("/proc")) -> dict[tuple[int, int], tuple[str, int]]:
    """`{(pid, start_time): (command, utime + stime ticks)}` for every process we can read."""
    out = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue  # the process exited while we looked
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        # Fields after the command, 0-based: utime = 11, stime = 12, starttime = 19.
        out[(int(entry.name), int(rest[19]))] = (comm, int(rest[11]) + int(rest[12]))
    return out


@register("host_load")
@dataclass
class HostLoadReader(Reader):
    device: str
    interval_s: float = 10.0
    process_groups: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, sec: Section) -> HostLoadReader:
        groups_sec = sec.table("process_groups")
        groups: dict[str, list[str]] = {}
        for name in list(groups_sec.data):
            try:
                check_name("process group", f"{LOAD_CPU_PREFIX}{name}")
            except NameError_ as exc:
                raise groups_sec.error(name, str(exc)) from None
            groups[name] = groups_sec.str_list(name)
        return cls(device=sec.name("device"), interval_s=sec.number("interval_s", 10.0, positive=True),
                   process_groups=groups)

    def group_of(self, comm: str) -> str:
        for group, names in self.process_groups.items():
            if comm in names:
                return group
        return OTHER

    def run(self, ctx: ReaderContext) -> None:
        previous, since = read_process_ticks(), time.monotonic()
        while not ctx.stop.wait(self.interval_s):
            now_ms = ctx.now_ms()
            for channel, value in zip(("load1", "load5", "load15"), os.getloadavg(), strict=True):
                ctx.emit(self.device, channel, {"value": value}, now_ms)
            current = read_process_ticks()
            used = {group: 0 for group in (*self.process_groups, OTHER)}
            for key, (comm, ticks) in current.items():
                used[self.group_of(comm)] += ticks - previous.get(key, (comm, 0))[1]
            elapsed_s = max(1e-3, time.monotonic() - since)
            previous, since = current, time.monotonic()
            for group, ticks in used.items():
                cores = max(0, ticks) / CLOCK_TICKS / elapsed_s
                ctx.emit(self.device, f"{LOAD_CPU_PREFIX}{group}", {"value": round(cores, 4)}, now_ms)
