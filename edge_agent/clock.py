"""The agent's clock: wall-clock milliseconds that never go back.

SPEC.md section 2 wants `ts` to increase strictly per series even when the wall clock steps. We anchor a monotonic
clock to the wall clock; a forward step is followed at once (nothing collides), a backward step is never followed:
we slew toward the wall clock at `SLEW_PPM` instead, so stamps stay ordered and unique. Every step is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

STEP_MS = 1000  # a disagreement larger than this is a step, not drift
SLEW_PPM = 5000  # 5 ms per second: a 1 h step back is absorbed in ~8 days, never by going back


class Clock:
    """Integer nanoseconds throughout, so no float rounding can cost a millisecond."""

    def __init__(self, wall_ns: Callable[[], int] = time.time_ns, mono_ns: Callable[[], int] = time.monotonic_ns):
        self._wall_ns, self._mono_ns = wall_ns, mono_ns
        self._lock = threading.Lock()
        self._last_mono_ns = mono_ns()
        self._offset_ns = wall_ns() - self._last_mono_ns
        self._behind = False
        self.steps_seen = 0

    def now_ms(self) -> int:
        with self._lock:
            mono = self._mono_ns()
            error = self._wall_ns() - (mono + self._offset_ns)
            if error >= 0:
                # The wall clock is ahead: following it at once keeps every stamp increasing.
                if error > STEP_MS * 1_000_000:
                    log.warning("wall clock stepped forward by %d ms: following it", error // 1_000_000)
                    self.steps_seen += 1
                self._offset_ns += error
                self._behind = False
            else:
                if error < -STEP_MS * 1_000_000 and not self._behind:
                    log.warning("wall clock stepped back by %d ms: slewing, stamps keep increasing",
                                -error // 1_000_000)
                    self.steps_seen += 1
                    self._behind = True
                budget = (mono - self._last_mono_ns) * SLEW_PPM // 1_000_000
                self._offset_ns += max(error, -budget)
                self._behind = self._behind and error < -STEP_MS * 1_000_000
            self._last_mono_ns = mono
            return (mono + self._offset_ns) // 1_000_000
