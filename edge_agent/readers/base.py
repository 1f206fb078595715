"""The Reader interface and its registry.

A reader is a long-running loop in its own thread: it takes readings and hands each to `ctx.emit`. Adding a meter
kind is one module with `@register("kind")`, a sample config in docs/ and a test.
"""

from __future__ import annotations

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


READERS: dict[str, type[Reader]] = {}


def register(kind: str) -> Callable[[type[Reader]], type[Reader]]:
    def add(cls: type[Reader]) -> type[Reader]:
        cls.kind = kind
        READERS[kind] = cls
        return cls

    return add


def reader_from_config(sec: Section) -> Reader:
    kind = sec.string("kind")
    if kind not in READERS:
        raise sec.error("kind", f"unknown reader kind {kind!r} (known: {', '.join(sorted(READERS))})")
    reader = READERS[kind].from_config(sec)
    sec.finish()
    return reader


__all__ = ["READERS", "ConfigError", "Fields", "Reader", "ReaderContext", "reader_from_config", "register"]
