"""The agent's clock: wall-clock milliseconds that never go back.

SPEC.md section 2 wants `ts` to increase strictly per series even when the wall clock steps. We anchor a monotonic
clock to the wall clock; a forward step is followed at once (nothing collides), a backward step is never followed:
we slew toward the wall clock at `SLEW_PPM` instead, so stamps stay ordered and unique. Every step is logged.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

STEP_MS = 1000  # a disagreement larger than this is a step, not drift
SLEW_PPM = 5000  # 5 ms per second: a 1 h step back is absorbed in ~8 days, never by going back


class Clock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset_ms = time.time_ns() / 1e6 - time.monotonic_ns() / 1e6
        self._last_mono_ms = time.monotonic_ns() / 1e6
        self._behind = False
        self.steps_seen = 0

    def now_ms(self) -> int:
        with self._lock:
            mono = time.monotonic_ns() / 1e6
            error = time.time_ns() / 1e6 - (mono + self._offset_ms)
            if error >= 0:
                # The wall clock is ahead: following it at once keeps every stamp increasing.
                if error > STEP_MS:
                    log.warning("wall clock stepped forward by %.0f ms: following it", error)
                    self.steps_seen += 1
                self._offset_ms += error
                self._behind = False
            else:
                if error < -STEP_MS and not self._behind:
                    log.warning("wall clock stepped back by %.0f ms: slewing, stamps keep increasing", -error)
                    self.steps_seen += 1
                    self._behind = True
                budget = (mono - self._last_mono_ms) * SLEW_PPM / 1e6
                self._offset_ms += max(error, -budget)
                self._behind = self._behind and error < -STEP_MS
            self._last_mono_ms = mono
            return int(mono + self._offset_ms)
