"""A formula derives series from stored ones, a time window at a time. Both of PowerAPI's modes run the same
`compute(store, window_start, inputs)`: in stream mode the hub recomputes the windows its new points touched (a few
seconds after they were stored); in post-mortem mode (`powerhub formula NAME --from --to`) every window of the range
is computed. Results land at a deterministic (series, ts), so computing a window again overwrites the same points:
running twice stores nothing twice, and a late or retransmitted point just corrects its window.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar

from hub.stores import Store
from telemetry import Point, SeriesKey
from telemetry.config import Section
from telemetry.inventory import Machine
from telemetry.payload import END_TS_MS
from telemetry.series import FORMULA_PREFIX, is_derived_channel
from telemetry.timeunits import MINUTE_MS

DERIVED_FIELD = "formula"  # every derived point says which formula wrote it

# Formulas whose rows stand in for raw points (the rollups answer /history) must never answer with less than was
# stored: their rows lag the points by the stream's rate limit. So a reader trusts a row only for windows that
# ended TRUSTED_AFTER_MS ago, and the runner marks, per input series, where windows older than PENDING_AFTER_MS
# wait to be computed (a backlog, a late point, a runner that fell behind): the reader takes raw points from there.
PENDING_AFTER_MS = 2 * MINUTE_MS
TRUSTED_AFTER_MS = 5 * MINUTE_MS  # well after PENDING_AFTER_MS: a window is marked before a reader trusts it
PENDING_FIELD = "pending_from"  # the marker's field: the earliest window start waiting, or NOTHING_PENDING
NOTHING_PENDING = -1.0


def read_pending_from(store: Store, mark: SeriesKey) -> int | None:
    """What a pending mark says: the earliest window start still waiting, or None (no mark, or nothing waits)."""
    newest = store.points(mark, 0, END_TS_MS, 1, newest=True)
    value = newest[0].fields.get(PENDING_FIELD) if newest else None
    return int(value) if isinstance(value, float | int) and value >= 0 else None


class Formula(ABC):
    name: ClassVar[str]
    window_ms: ClassVar[int]  # the unit of recomputation
    reach_ms: int = 0  # a point at ts also changes windows up to this far before it (step-before intervals)
    min_interval_s: ClassVar[float] = 0.0  # stream mode recomputes one window at most this often
    marks_pending: ClassVar[bool] = False  # readers take its rows in place of raw points: see PENDING_AFTER_MS

    @abstractmethod
    def is_input(self, key: SeriesKey) -> bool:
        """Whether points of this series feed this formula."""

    @abstractmethod
    def compute(self, store: Store, start_ms: int, inputs: set[SeriesKey]) -> list[Point]:
        """The derived points of the window `[start_ms, start_ms + window_ms)` for these input series."""

    def compute_range(self, store: Store, from_ms: int, to_ms: int, inputs: set[SeriesKey]) -> list[Point] | None:
        """Post-mortem in fewer queries, for formulas whose windows do not read each other's results; None: the
        runner computes and writes one window after the other (energy's days read its stored hours)."""
        return None

    def pending_key(self, key: SeriesKey) -> SeriesKey | None:
        """With `marks_pending`: the series where the runner marks which windows of this input wait to be
        computed; None where this input has no such series (nor rows a reader would trust)."""
        return None

    def windows(self, stamps_ms: Sequence[int]) -> set[int]:
        """Starts of the windows that points at `stamps_ms` change."""
        w, reach = self.window_ms, self.reach_ms
        starts = {ts // w * w for ts in stamps_ms}
        return starts | {(ts - reach) // w * w for ts in stamps_ms} if reach else starts


FormulaFactory = Callable[[Section, list[Machine]], Formula]
FORMULAS: dict[str, FormulaFactory] = {}


def register(name: str) -> Callable[[FormulaFactory], FormulaFactory]:
    def add(factory: FormulaFactory) -> FormulaFactory:
        FORMULAS[name] = factory
        return factory

    return add


def derived(key: SeriesKey, ts_ms: int, formula: str, **fields: float) -> Point:
    return Point(key, ts_ms, 0, {**fields, DERIVED_FIELD: formula})


def is_derived(key: SeriesKey) -> bool:
    """Series the formulas write; no formula takes them as raw input."""
    return is_derived_channel(key.channel) or key.device.startswith(FORMULA_PREFIX)
