"""The Reader interface and its registry.

A reader is a long-running loop in its own thread: it takes readings and hands each to `ctx.emit`. Adding a meter
kind is one module with `@register("kind")`, a sample config in docs/ and a test.
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from telemetry.config import ConfigError, Section

Fields = dict[str, float | int | str | bool]
Emit = Callable[[str, str, Fields, int | None], None]  # (device, channel, fields, ts_ms or None = now)


@dataclass
class ReaderContext:
    site: str
    emit: Emit
    now_ms: Callable[[], int]
    stop: threading.Event
    counters: Counter[str] = field(default_factory=Counter)


class Reader(ABC):
    kind: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_config(cls, sec: Section) -> Reader:
        """Check the reader's keys (no I/O: a device that is down must not stop start-up)."""

    @abstractmethod
    def run(self, ctx: ReaderContext) -> None:
        """Take readings until `ctx.stop` is set; survive device faults by retrying."""

    @property
    def name(self) -> str:
        return getattr(self, "device", self.kind)

    @property
    def devices(self) -> list[str]:
        """The devices this reader publishes, as far as its config says: the agent's status (and its last will)
        names them from the start, before their first point."""
        device = getattr(self, "device", None)
        return [device] if isinstance(device, str) else []


READERS: dict[str, type[Reader]] = {}

# The built-in kinds, imported when a config names them: an agent that reads one meter does not load the SNMP and IPMI
# libraries (about 20 MB of its memory on a Raspberry Pi).
BUILTIN = {kind: f"edge_agent.readers.{kind}" for kind in ("blip_serial", "host_load", "ipmi_dcmi", "simulated",
                                                            "snmp_pdu")}


def register(kind: str) -> Callable[[type[Reader]], type[Reader]]:
    def add(cls: type[Reader]) -> type[Reader]:
        cls.kind = kind
        READERS[kind] = cls
        return cls

    return add


def reader_class(kind: str) -> type[Reader] | None:
    if kind not in READERS and kind in BUILTIN:
        importlib.import_module(BUILTIN[kind])  # registers it
    return READERS.get(kind)


def reader_from_config(sec: Section) -> Reader:
    kind = sec.string("kind")
    cls = reader_class(kind)
    if cls is None:
        known = sorted(set(READERS) | set(BUILTIN))
        raise sec.error("kind", f"unknown reader kind {kind!r} (known: {', '.join(known)})")
    reader = cls.from_config(sec)
    sec.finish()
    return reader


__all__ = ["BUILTIN", "READERS", "ConfigError", "Fields", "Reader", "ReaderContext", "reader_class",
           "reader_from_config", "register"]
