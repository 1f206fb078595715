"""The Store interface that hub and web share, and the registry of store kinds by URL scheme.

Every store keeps `(series, ts)` unique: writing a point again replaces it, so a retransmission is harmless.
Ranges are half-open, `from_ms <= ts < to_ms`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from telemetry import Point, SeriesKey
from telemetry.errors import PowerhubError


class StoreUnavailable(PowerhubError, RuntimeError):
    """The store did not answer; the caller retries later (hub) or answers 503 (web)."""

    exit_status = 3
    kind = "store unavailable"


class StoreRejected(PowerhubError, ValueError):
    """The store refused a batch for good (e.g. a field type conflict); retrying cannot help."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """Aggregates of one series over `[start_ms, start_ms + step)`. `sum_ms`.. are None for series without `ms`."""

    start_ms: int
    count: int
    mean: float
    min: float
    max: float
    sum_ms: int | None = None
    min_ms: int | None = None
    max_ms: int | None = None
    blink_wh: float | None = None  # sum(w * ms) / 3.6e6: the energy of the blinks, exact for blink meters

    @classmethod
    def combined(cls, start_ms: int, parts: Sequence[Bucket]) -> Bucket:
        """One bucket from several of the same series (an hour's minutes; a bucket's rolled-up and raw parts):
        counts and sums added, the mean weighted by count."""
        count = sum(b.count for b in parts)
        timed = [b for b in parts if b.sum_ms is not None]
        energy = [b.blink_wh for b in parts if b.blink_wh is not None]
        return cls(start_ms, count, sum(b.mean * b.count for b in parts) / count, min(b.min for b in parts),
                   max(b.max for b in parts), sum(b.sum_ms or 0 for b in timed) if timed else None,
                   min(b.min_ms or 0 for b in timed) if timed else None,
                   max(b.max_ms or 0 for b in timed) if timed else None, sum(energy) if energy else None)


def merge_buckets(*lists: Sequence[Bucket]) -> list[Bucket]:
    """Buckets of the same series, step and origin from several sources, those with one start combined."""
    by_start: dict[int, list[Bucket]] = {}
    for buckets in lists:
        for b in buckets:
            by_start.setdefault(b.start_ms, []).append(b)
    return [parts[0] if len(parts) == 1 else Bucket.combined(start, parts) for start, parts in sorted(by_start.items())]


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    key: SeriesKey
    last: Point | None


class Store(ABC):
    """What every store kind does, which hub, web and the command line rely on:

    - `(series, ts)` is unique: a point written again (an agent's retransmission, a formula's window computed once
      more) replaces the one stored, and is never counted twice.
    - A write returns only once its points are durable (the hub acknowledges the MQTT message after it), and raises
      StoreUnavailable (retry later: nothing is lost) or StoreRejected (never retry: the batch is dropped, counted).
    - Ranges are half-open, `from_ms <= ts < to_ms`, and results are oldest first.
    - Reads see every write that returned before them.
    """

    @abstractmethod
    def write(self, points: Sequence[Point]) -> None:
        """Store points durably before returning; raises StoreUnavailable or StoreRejected."""

    @abstractmethod
    def series(self) -> list[SeriesInfo]:
        """Every series a user would list, sorted by id, each with its newest point: measured series and the
        formulas' (power, load, energy), never the rollups' rows and marks (measurement `rollup`: the hub's own
        bookkeeping, read only through `rollup_buckets` and `points`)."""

    def series_keys(self) -> list[SeriesKey]:
        """The keys `series()` would list, sorted by id, without their newest points: what formulas and id checks
        need, and for a store with an index far cheaper than reading each series' newest point."""
        return [info.key for info in self.series()]

    @abstractmethod
    def points(self, key: SeriesKey, from_ms: int, to_ms: int, limit: int, newest: bool = False) -> list[Point]:
        """Points in range, oldest first: the oldest `limit`, or with `newest` the newest `limit`."""

    @abstractmethod
    def buckets(self, key: SeriesKey, from_ms: int, to_ms: int, step_ms: int, origin_ms: int = 0) -> list[Bucket]:
        """Non-empty buckets `origin + k*step` of the points in range, oldest first."""

    @abstractmethod
    def rollup_buckets(self, key: SeriesKey, from_ms: int, to_ms: int, step_ms: int,
                       origin_ms: int = 0) -> list[Bucket]:
        """Buckets of a `rollup-*` series (rows of n, sum_w, min_w, max_w, sum_ms, min_ms, max_ms, blink_wh),
        combined: counts and sums added, the mean weighted by count."""

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    def close(self) -> None:  # noqa: B027 - most stores have nothing to close
        pass


StoreFactory = Callable[[str, str | None, bool], Store]  # (url, token, create)
STORES: dict[str, StoreFactory] = {}


def register(*schemes: str) -> Callable[[StoreFactory], StoreFactory]:
    def add(factory: StoreFactory) -> StoreFactory:
        for scheme in schemes:
            STORES[scheme] = factory
        return factory

    return add


def open_store(url: str, token: str | None = None, create: bool = True) -> Store:
    """The store a URL names. `create=False` for commands that only read (export, plot, inventory): a store that
    does not exist yet is StoreUnavailable there, not an empty file made as a side effect."""
    scheme = urlsplit(url).scheme
    if scheme not in STORES:
        raise ValueError(f"unknown store URL scheme {scheme!r} (known: {', '.join(sorted(STORES))})")
    return STORES[scheme](url, token, create)
