"""Runs formulas in stream mode (the hub notes the points it stored; the windows they touched are recomputed a moment
later, each at most once per round) and post-mortem (every window of a range)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from hub.formulas.base import (
    NOTHING_PENDING,
    PENDING_AFTER_MS,
    PENDING_FIELD,
    Formula,
    derived,
    read_pending_from,
)
from hub.stores import Store, StoreUnavailable
from telemetry import Point, SeriesKey
from telemetry.metrics import Metrics
from telemetry.timeunits import DAY_MS, now_ms

log = logging.getLogger(__name__)


RUN_MAX_MS = DAY_MS  # a run of windows computed in one go spans a day at most: memory stays flat
# A mark still pending is written again this often: another hub on the same shared subscription may have cleared it.
MARK_REFRESH_MS = 10_000
MARKS_EVERY_S = 5.0  # how often a long flush looks again for windows that aged past PENDING_AFTER_MS meanwhile
STOP_JOIN_S = 10.0  # stop() waits this long for the loop; the flush lock keeps the two apart after that

Window = tuple[int, int]  # (formula index, window start)
Expected = list[tuple[int, SeriesKey, int]]  # (formula index, input, window start) of points about to be stored


def _runs(due: dict[tuple[int, int], set[SeriesKey]],
          formulas: list[Formula]) -> list[tuple[int, list[int], set[SeriesKey]]]:
    """Due windows as runs `(formula index, window starts, inputs)`: neighbouring windows of one formula with the
    same inputs, oldest first."""
    runs: list[tuple[int, list[int], set[SeriesKey]]] = []
    for (i, start), keys in sorted(due.items()):
        if runs:
            j, starts, run_keys = runs[-1]
            w = formulas[i].window_ms
            if j == i and run_keys == keys and starts[-1] + w == start and start + w - starts[0] <= RUN_MAX_MS:
                starts.append(start)
                continue
        runs.append((i, [start], keys))
    return runs


class FormulaRunner:
    def __init__(self, store: Store, formulas: list[Formula], metrics: Metrics | None = None,
                 every_s: float = 2.0) -> None:
        self.store, self.formulas, self.metrics, self.every_s = store, formulas, metrics, every_s
        self._dirty: dict[Window, set[SeriesKey]] = {}  # (formula index, window start) -> inputs
        self._ran: dict[Window, float] = {}  # when each window was last computed (monotonic)
        self._lock = threading.Lock()
        # One flush at a time: the loop's and stop()'s must not compute the same windows at once (two writers of one
        # rollup row, and a query that sees another's row half-written).
        self._flushing = threading.Lock()
        # Pending marks (hub.formulas.base): what this runner last wrote per (formula, input), the windows of
        # points about to be stored, and the marker series' last ts (a marker's ts only ever increases).
        self._marked: dict[tuple[int, SeriesKey], int] = {}
        self._incoming: Counter[tuple[int, SeriesKey, int]] = Counter()
        self._mark_ts: dict[SeriesKey, int] = {}
        self._marked_at: dict[tuple[int, SeriesKey], int] = {}  # when a mark was last written (Unix ms)
        self._mark_lock = threading.Lock()  # one marking at a time: an older view must never be written last
        self._marking = [i for i, f in enumerate(formulas) if f.marks_pending]
        self._computing: dict[Window, set[SeriesKey]] = {}  # taken from _dirty by a flush, rows not yet written
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="formulas", daemon=True)
        self.on_written: Callable[[list[Point]], None] | None = None  # e.g. Home Assistant's sensors

    def note(self, points: Iterable[Point]) -> None:
        """Stream mode: these points are stored; recompute what they change."""
        stamps: dict[SeriesKey, list[int]] = {}
        last_key, ts_list = None, []
        for p in points:  # per series first: the hub notes thousands of points of a few series at a time
            if p.key is not last_key:  # a payload's points share their key: looked up once per run
                last_key, ts_list = p.key, stamps.setdefault(p.key, [])
            ts_list.append(p.ts_ms)
        with self._lock:
            for i, f in enumerate(self.formulas):
                for key, ts_list in stamps.items():
                    if f.is_input(key):
                        for start in f.windows(ts_list):
                            self._dirty.setdefault((i, start), set()).add(key)

    def expect(self, points: Iterable[Point]) -> Expected:
        """Before storing points: their windows that are already old enough to be trusted soon, so the next
        `mark_pending` marks them before the points land; `release` the result after the write (or its failure)."""
        if not self._marking:
            return []
        old_before = now_ms() - PENDING_AFTER_MS
        oldest: dict[SeriesKey, int] = {}
        last_key, low = None, old_before
        for p in points:  # live points cost one comparison; old ones of one payload share their key object
            ts = p.ts_ms
            if ts < old_before:
                if p.key is last_key:
                    low = min(low, ts)
                    continue
                if last_key is not None:
                    oldest[last_key] = min(low, oldest.get(last_key, low))
                last_key, low = p.key, ts
        if last_key is not None:
            oldest[last_key] = min(low, oldest.get(last_key, low))
        expected: Expected = []
        for key, ts in oldest.items():
            for i in self._marking:
                f = self.formulas[i]
                if f.is_input(key):
                    expected.append((i, key, min(f.windows([ts]))))
        if expected:
            with self._lock:
                self._incoming.update(expected)
        return expected

    def release(self, expected: Expected) -> None:
        if expected:
            with self._lock:
                self._incoming.subtract(expected)
                self._incoming += Counter()  # drops the zeros

    def mark_expected(self, expected: Expected) -> None:
        """Mark the windows `expect` found (where the marks do not reach back to them yet): the writer's part,
        before it stores the points, in time proportional to the batch. Raises StoreUnavailable."""
        with self._mark_lock:
            earliest: dict[tuple[int, SeriesKey], int] = {}
            for i, key, start in expected:
                _keep_earliest(earliest, (i, key), start)
            with self._lock:
                earlier = {w: start for w, start in earliest.items() if start < self._marked.get(w, start + 1)}
            marks = [m for (i, key), start in earlier.items() if (m := self._marker(i, key, float(start)))]
            if marks:
                self.store.write(marks)
                with self._lock:
                    self._marked.update(earlier)
                    self._marked_at.update(dict.fromkeys(earlier, now_ms()))

    def mark_pending(self) -> None:
        """Write a marker wherever a window older than PENDING_AFTER_MS waits (dirty, or its points about to be
        stored) and the marker does not say so yet; where nothing waits any more, or later than marked, say that.
        Raises StoreUnavailable: the caller retries, and stores nothing the markers have not announced."""
        with self._mark_lock:
            self._mark_pending()

    def _mark_pending(self) -> None:
        now = now_ms()
        with self._lock:
            waiting: dict[tuple[int, SeriesKey], int] = {}
            for (i, start), keys in [*self._dirty.items(), *self._computing.items()]:
                if i in self._marking and start + self.formulas[i].window_ms < now - PENDING_AFTER_MS:
                    for key in keys:
                        _keep_earliest(waiting, (i, key), start)
            for i, key, start in self._incoming:
                _keep_earliest(waiting, (i, key), start)
            stale = now - MARK_REFRESH_MS
            changed = {w: start for w, start in waiting.items()
                       if self._marked.get(w) != start or self._marked_at.get(w, 0) < stale}
            cleared = [w for w in self._marked if w not in waiting]
        wanted = [(w, float(start)) for w, start in changed.items()] + [(w, NOTHING_PENDING) for w in cleared]
        marks = [m for (i, key), pending_from in wanted if (m := self._marker(i, key, pending_from))]
        if not marks:
            return
        self.store.write(marks)
        with self._lock:
            self._marked.update(changed)
            self._marked_at.update(dict.fromkeys(changed, now))
            for w in cleared:
                self._marked_at.pop(w, None)
                self._marked.pop(w, None)

    def _marker(self, i: int, key: SeriesKey, pending_from: float) -> Point | None:
        mark = self.formulas[i].pending_key(key)
        if mark is None:
            return None
        ts = max(now_ms(), self._mark_ts.get(mark, 0) + 1)
        self._mark_ts[mark] = ts
        return derived(mark, ts, self.formulas[i].name, **{PENDING_FIELD: pending_from})

    def flush(self, all_due: bool = False) -> int:
        """Recompute every dirty window (not yet those computed less than their formula's `min_interval_s` ago,
        unless `all_due`); the number of derived points written. The loop's flush gives way when the runner
        stops: what it had left is stop()'s final flush's."""
        with self._flushing:
            return self._flush(all_due)

    def _flush(self, all_due: bool) -> int:
        self._mark_or_log()  # windows that aged while they waited are marked before anyone trusts them
        now = time.monotonic()
        with self._lock:
            due = {w: keys for w, keys in self._dirty.items()
                   if all_due or now - self._ran.get(w, -1e9) >= self.formulas[w[0]].min_interval_s}
            for w in due:
                del self._dirty[w]
            runs = _runs(due, self.formulas)
            # Only a run's newest window is rate-limited: it is the one live points keep coming to. A backlog's
            # older windows are done (a late point there is computed at the next flush), and remembering each of
            # them would hold a year-long backlog's 525,600 minutes here.
            for i, starts, _keys in runs:
                self._ran[(i, starts[-1])] = now
            if len(self._ran) > 10_000:  # only recent runs matter for the rate limit
                self._ran = {w: t for w, t in self._ran.items() if now - t < 3600}
        written = 0
        marked_at = time.monotonic()
        # The windows being computed stay marked until their rows are written: `_computing` holds them meanwhile.
        with self._lock:
            self._computing = due
        try:
            for n, (i, starts, keys) in enumerate(runs):
                if self._stop.is_set() and not all_due:
                    self._give_back(runs[n:])
                    break
                f = self.formulas[i]
                try:
                    written += self._compute_run(f, starts, keys)
                except StoreUnavailable as exc:
                    log.warning("formula %s: store unavailable (%s); will retry", f.name, exc)
                    with self._lock:
                        for start in starts:
                            self._dirty.setdefault((i, start), set()).update(keys)
                with self._lock:
                    for start in starts:
                        self._computing.pop((i, start), None)
                if time.monotonic() - marked_at > MARKS_EVERY_S:
                    self._mark_or_log()
                    marked_at = time.monotonic()
        finally:
            with self._lock:
                self._computing = {}
        self._mark_or_log()  # what was computed is no longer pending
        return written

    def _give_back(self, runs: list[tuple[int, list[int], set[SeriesKey]]]) -> None:
        """Runs not computed: dirty again, for the next flush."""
        with self._lock:
            for i, starts, keys in runs:
                for start in starts:
                    self._dirty.setdefault((i, start), set()).update(keys)
                    self._computing.pop((i, start), None)

    def _mark_or_log(self) -> None:
        try:
            self.mark_pending()
        except StoreUnavailable as exc:
            log.warning("formulas: store unavailable for the pending marks (%s); will retry", exc)

    def _compute_run(self, f: Formula, starts: list[int], keys: set[SeriesKey]) -> int:
        """Neighbouring windows in one go where the formula can (a backlog of days is a query per series, not one
        per hour); otherwise one window after the other."""
        if len(starts) > 1:
            points = f.compute_range(self.store, starts[0], starts[-1] + f.window_ms, keys)
            if points is not None:
                return self._write(f, points)
        return sum(self._write(f, f.compute(self.store, start, keys)) for start in starts)

    def replay(self, name: str, from_ms: int, to_ms: int) -> int:
        """Post-mortem: compute every window of `[from_ms, to_ms)` from the stored points. (Replay `energy` after
        the formulas whose power it integrates.)"""
        f = next(f for f in self.formulas if f.name == name)
        inputs = {key for key in self.store.series_keys() if f.is_input(key)}
        written = 0
        day = DAY_MS  # a day at a time: results are written as they come, memory stays flat
        for chunk in range(from_ms // f.window_ms * f.window_ms, to_ms, day):
            end = min(to_ms, chunk + day)
            points = f.compute_range(self.store, chunk, end, inputs)
            if points is not None:
                written += self._write(f, points)
                continue
            for start in range(chunk, end, f.window_ms):
                written += self._write(f, f.compute(self.store, start, inputs))
        if f.marks_pending:
            self._settle_marks(self.formulas.index(f), inputs, from_ms, to_ms)
        return written

    def _settle_marks(self, i: int, inputs: set[SeriesKey], from_ms: int, to_ms: int) -> None:
        """After a replay: marks it covered from their start (left, say, by a hub killed while it was behind) are
        cleared, or moved to where the replay ended if that is before the windows anyone would trust."""
        f = self.formulas[i]
        marks = []
        for key in sorted(inputs):
            mark = f.pending_key(key)
            pending_from = read_pending_from(self.store, mark) if mark else None
            if pending_from is not None and from_ms <= pending_from < to_ms:
                left = NOTHING_PENDING if to_ms >= now_ms() - PENDING_AFTER_MS else float(to_ms)
                marks.append(self._marker(i, key, left))
        self.store.write([m for m in marks if m is not None])

    def _write(self, f: Formula, points: list[Point]) -> int:
        if points:
            self.store.write(points)
            self.note(points)  # derived power feeds `energy` (per machine, per site); energy feeds nothing
            if self.on_written:
                self.on_written(points)
            if self.metrics:
                self.metrics.inc("powerhub_formula_points_total", len(points), formula=f.name)
        return len(points)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(STOP_JOIN_S)
        self.flush(all_due=True)  # what the rate limit held back (and the loop gave back) would otherwise wait

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.flush()
            except Exception:  # a formula's bug must not stop the others, nor the hub
                log.exception("formulas failed; going on")


def _keep_earliest(starts: dict[tuple[int, SeriesKey], int], window: tuple[int, SeriesKey], start: int) -> None:
    """Per (formula, series), the earliest window start seen: where a pending mark must reach back to."""
    if start < starts.get(window, start + 1):
        starts[window] = start
