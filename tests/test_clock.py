"""The agent's clock under wall-clock steps: stamps never go back, steps are counted (SPEC.md section 2)."""

from __future__ import annotations

import itertools

from edge_agent.clock import SLEW_PPM, Clock

MS = 1_000_000  # ns
T0 = 1_700_000_000_000


class FakeTime:
    """Wall and monotonic clocks the test moves by hand; the clock's own logic is what is tested."""

    def __init__(self) -> None:
        self.wall_ns = T0 * MS
        self.mono_ns = 5_000 * MS

    def advance(self, ms: int) -> None:
        self.wall_ns += ms * MS
        self.mono_ns += ms * MS


def make() -> tuple[Clock, FakeTime]:
    t = FakeTime()
    return Clock(lambda: t.wall_ns, lambda: t.mono_ns), t


def test_follows_the_wall_clock() -> None:
    clock, t = make()
    assert clock.now_ms() == T0
    t.advance(1500)
    assert clock.now_ms() == T0 + 1500
    assert clock.steps_seen == 0


def test_step_forward_is_followed_at_once() -> None:
    clock, t = make()
    clock.now_ms()
    t.wall_ns += 3_600_000 * MS
    t.advance(10)
    assert clock.now_ms() == T0 + 3_600_010
    assert clock.steps_seen == 1


def test_step_back_never_makes_stamps_go_back() -> None:
    clock, t = make()
    before = clock.now_ms()
    t.wall_ns -= 3_600_000 * MS  # an hour back
    stamps = []
    for _ in range(1000):
        t.advance(1000)
        stamps.append(clock.now_ms())
    assert stamps[0] > before
    assert all(b > a for a, b in itertools.pairwise(stamps))
    # Slewing: each real second moves our clock 1 s minus SLEW_PPM, so it creeps toward the wall clock.
    assert stamps[-1] - stamps[0] == 999 * (1000 - 1000 * SLEW_PPM // 1_000_000)
    assert clock.steps_seen == 1
