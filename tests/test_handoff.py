"""The hub's hand-off between paho's thread and the writer (pure logic, real threads)."""

from __future__ import annotations

import threading
import time

from hub.handoff import Batch, BatchLimits, Handoff, Message
from telemetry import Point, SeriesKey

KEY = SeriesKey("lab", "rack", "power")


def message(mid: int, n_points: int = 1) -> Message:
    return Message(mid, 1, [Point(KEY, 1_700_000_000_000 + i, mid, {"w": 1.0}) for i in range(n_points)], 1)


def mids(batch: Batch | None) -> list[int]:
    assert batch is not None
    return [m.mid for m in batch.messages]


def test_a_batch_is_taken_when_full_by_points_or_messages() -> None:
    h = Handoff(max_points=100)
    for mid in range(10):
        assert h.put(message(mid, 5), 1)
    assert mids(h.take(BatchLimits(12, 100, 10.0, 10.0), 1)) == [0, 1, 2]  # 15 points >= 12
    assert mids(h.take(BatchLimits(1000, 2, 10.0, 10.0), 1)) == [3, 4]
    assert len(h) == 5


def test_a_batch_is_taken_after_a_quiet_moment_not_its_whole_age() -> None:
    h = Handoff(max_points=100)
    h.put(message(1), 1)
    t0 = time.monotonic()
    batch = h.take(BatchLimits(1000, 1000, age_s=5.0, quiet_s=0.05), 1)
    assert mids(batch) == [1] and time.monotonic() - t0 < 1.0


def test_a_steady_flow_is_batched_until_its_age() -> None:
    h = Handoff(max_points=10_000)
    stop = threading.Event()

    def feed() -> None:
        mid = 0
        while not stop.is_set():
            h.put(message(mid), 1)
            mid += 1
            time.sleep(0.005)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        t0 = time.monotonic()
        batch = h.take(BatchLimits(10_000, 10_000, age_s=0.3, quiet_s=1.0), 1)
        assert 0.29 < time.monotonic() - t0 < 3.0 and len(mids(batch)) > 10
    finally:
        stop.set()
        feeder.join()


def test_a_full_handoff_holds_the_producer_until_the_writer_takes() -> None:
    h = Handoff(max_points=10)
    assert h.put(message(1, 500), 1)  # an empty hand-off takes any message, however large
    assert not h.put(message(2), 0.1)  # full: paho's thread would wait here
    got: list[bool] = []
    producer = threading.Thread(target=lambda: got.append(h.put(message(3), 5)))
    producer.start()
    time.sleep(0.1)
    assert not got
    assert mids(h.take(BatchLimits(1000, 1, 0.01, 0.01), 1)) == [1]
    producer.join(5)
    assert got == [True] and len(h) == 1


def test_take_waits_for_a_first_message_and_gives_up() -> None:
    assert Handoff(10).take(BatchLimits(10, 10, 1.0, 1.0), wait_s=0.05) is None


def test_take_full_waits_for_a_full_batch_and_tickets_follow_the_order_taken() -> None:
    h = Handoff(max_points=20)  # full: 10 points
    limits = BatchLimits(10, 100, 1.0, 0.01)
    for mid in range(3):
        h.put(message(mid, 3), 1)
    assert h.take_full(limits, wait_s=0.05) is None  # 9 points: not a full batch
    first = h.take(limits, 1)
    assert first is not None and first.ticket == 0 and mids(first) == [0, 1, 2]
    got: list[Batch | None] = []
    helper = threading.Thread(target=lambda: got.append(h.take_full(limits, wait_s=5)))
    helper.start()
    for mid in range(3, 7):
        h.put(message(mid, 3), 1)  # the fourth crosses 10 points and wakes the helper
    helper.join(5)
    assert got and got[0] is not None and got[0].ticket == 1 and mids(got[0]) == [3, 4, 5, 6]


def test_take_full_does_not_cut_into_a_batch_being_filled() -> None:
    h = Handoff(max_points=20)
    limits = BatchLimits(100, 100, age_s=0.5, quiet_s=0.5)  # `take` goes on filling for half a second
    h.put(message(0, 1), 1)
    taken: list[Batch | None] = []
    filler = threading.Thread(target=lambda: taken.append(h.take(limits, 1)))
    filler.start()
    time.sleep(0.1)
    with h._cond:  # the three arrive before the filling `take` can wake (the lock is re-entrant)
        for mid in range(1, 4):
            h.put(message(mid, 5), 1)  # 15 points: a full batch by count, but `take` is filling one
        assert h.take_full(limits, wait_s=0.05) is None
    filler.join(5)
    assert mids(taken[0]) == [0, 1, 2, 3]
