"""The hand-off from paho's network thread to the hub's writer: bounded by points, taken in batches.

A full hand-off blocks paho's thread in `put`, so the hub stops reading its socket and the broker keeps the rest
(at most its in-flight window, the hub's MQTT 5 Receive Maximum, sits in the socket). The writer takes a batch when
it is full, old, or when nothing came for a moment: a broker whose window is used up sends nothing more until the
batch is written and acknowledged, so waiting longer would only idle both.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from telemetry import Point


@dataclass(frozen=True)
class Message:
    mid: int
    qos: int
    points: list[Point]
    connection: int  # which connection it came on: a PUBACK is only meaningful on that one


@dataclass(frozen=True)
class BatchLimits:
    points: int  # a batch this full is taken at once
    messages: int
    age_s: float  # counted from the batch's first message
    quiet_s: float  # no new message for this long: take what there is


class Handoff:
    def __init__(self, max_points: int) -> None:
        self.max_points = max_points
        self._items: deque[Message] = deque()
        self._points = 0
        self._cond = threading.Condition()

    def put(self, m: Message, timeout_s: float) -> bool:
        """Queue `m` once there is room (always, into an empty hand-off); False if there was none in time."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._points < self.max_points or not self._items, timeout_s):
                return False
            self._items.append(m)
            self._points += len(m.points)
            if len(self._items) == 1:
                self._cond.notify_all()  # the writer waits only on an empty hand-off
            return True

    def take(self, limits: BatchLimits, wait_s: float) -> list[Message]:
        """A batch; waits up to `wait_s` for its first message, then fills it as `limits` say."""
        batch: list[Message] = []
        n_points = 0
        with self._cond:
            if not self._cond.wait_for(lambda: self._items, wait_s):
                return batch
            deadline = time.monotonic() + limits.age_s
            while True:
                while self._items and n_points < limits.points and len(batch) < limits.messages:
                    m = self._items.popleft()
                    self._points -= len(m.points)
                    batch.append(m)
                    n_points += len(m.points)
                self._cond.notify_all()  # room again for paho's thread
                remaining_s = deadline - time.monotonic()
                if n_points >= limits.points or len(batch) >= limits.messages or remaining_s <= 0:
                    return batch
                if not self._cond.wait_for(lambda: self._items, min(remaining_s, limits.quiet_s)):
                    return batch

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
