"""The hand-off from paho's network thread to the hub's writers: bounded by points, taken in batches.

A full hand-off blocks paho's thread in `put`, so the hub stops reading its socket and the broker keeps the rest
(at most its in-flight window, the hub's MQTT 5 Receive Maximum, sits in the socket). The first writer takes a batch
(`take`) when it is full, old, or when nothing came for a moment: a broker whose window is used up sends nothing more
until the batch is written and acknowledged, so waiting longer would only idle both. The second (`take_full`) takes
only a full batch that waits while the first is busy.

Batches are numbered in the order they are taken and hold consecutive messages, so their PUBACKs can go out in the
order the messages came (as MQTT asks) whichever writer stores its batch first.
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


@dataclass(frozen=True)
class Batch:
    ticket: int  # 0, 1, 2.. in the order batches were taken
    messages: list[Message]


class Handoff:
    def __init__(self, max_points: int) -> None:
        self.max_points = max_points
        self.full_points = max_points // 2  # what `take_full` waits for: a batch while another is being written
        self._items: deque[Message] = deque()
        self._points = 0
        self._cond = threading.Condition()
        self._tickets = 0
        self._filling = False  # a `take` has part of a batch and waits for the rest

    def put(self, m: Message, timeout_s: float) -> bool:
        """Queue `m` once there is room (always, into an empty hand-off); False if there was none in time."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._points < self.max_points or not self._items, timeout_s):
                return False
            before = self._points
            self._items.append(m)
            self._points += len(m.points)
            # Writers wait only for a first message, or (`take_full`) for a full batch: woken then, not per message.
            if len(self._items) == 1 or before < self.full_points <= self._points:
                self._cond.notify_all()
            return True

    def take(self, limits: BatchLimits, wait_s: float) -> Batch | None:
        """A batch; waits up to `wait_s` for its first message, then fills it as `limits` say."""
        messages: list[Message] = []
        n_points = 0
        with self._cond:
            if not self._cond.wait_for(lambda: self._items, wait_s):
                return None
            deadline = time.monotonic() + limits.age_s
            self._filling = True
            try:
                while True:
                    n_points = self._pop(messages, n_points, limits)
                    remaining_s = deadline - time.monotonic()
                    if n_points >= limits.points or len(messages) >= limits.messages or remaining_s <= 0:
                        break
                    if not self._cond.wait_for(lambda: self._items, min(remaining_s, limits.quiet_s)):
                        break
            finally:
                self._filling = False
                if self._points >= self.full_points:
                    self._cond.notify_all()  # a full batch came meanwhile: for `take_full`
            return self._numbered(messages)

    def take_full(self, limits: BatchLimits, wait_s: float) -> Batch | None:
        """A batch only once `full_points` wait and no `take` is filling one (so batches stay consecutive); None if
        there was none within `wait_s`."""
        messages: list[Message] = []
        with self._cond:
            if not self._cond.wait_for(lambda: not self._filling and self._points >= self.full_points, wait_s):
                return None
            self._pop(messages, 0, limits)
            return self._numbered(messages)

    def _pop(self, messages: list[Message], n_points: int, limits: BatchLimits) -> int:
        """Move queued messages to `messages` (holding `n_points`) up to `limits`; the points it holds then."""
        while self._items and n_points < limits.points and len(messages) < limits.messages:
            m = self._items.popleft()
            self._points -= len(m.points)
            messages.append(m)
            n_points += len(m.points)
        self._cond.notify_all()  # room again for paho's thread
        return n_points

    def _numbered(self, messages: list[Message]) -> Batch:
        self._tickets += 1
        return Batch(self._tickets - 1, messages)

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
