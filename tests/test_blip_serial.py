"""The blink reader: its line parser, and the reader itself on a pty pair standing in for the Arduino."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from edge_agent.readers import ReaderContext
from edge_agent.readers.base import Fields
from edge_agent.readers.blip_serial import BlipSerialReader, LineError, blink_watts, parse_line
from tests.peers import Pty, wait_for


@pytest.mark.parametrize(
    ("line", "parsed"),
    [(b"1000", (None, 1000)), (b"1000\r", (None, 1000)), (b" 87 ", (None, 87)), (b"1 2500", ("1", 2500)),
     (b"12 1\r", ("12", 1)), (b"CONNECTED...", None), (b"INFO 1 main meter", None)],
)
def test_parse_good_lines(line: bytes, parsed: tuple[str | None, int] | None) -> None:
    assert parse_line(line) == parsed


@pytest.mark.parametrize(
    ("line", "why"),
    [(b"", "empty"), (b"\r", "empty"), (b"abc", "not a blink"), (b"12abc", "not a blink"), (b"1e5", "not a blink"),
     (b"10.5", "not a blink"), (b"0", "zero"), (b"-100", "negative"), (b"1 -5", "negative"),
     (b"99999999999999999999", "absurd"), (b"2147483648", "absurd"), (b"\xff\xfe12", "not ASCII"),
     (b"1 2 3", "not a blink"), (b"1234567890 5", "not a blink")],
)
def test_parse_bad_lines(line: bytes, why: str) -> None:
    with pytest.raises(LineError, match=why):
        parse_line(line)


def test_meter_constants() -> None:
    assert blink_watts(1000, 1000, 1) == 3600.0  # labitat: w = 3_600_000 / ms
    assert blink_watts(1000, 600, 4) == pytest.approx(24_000.0)  # Studentergaarden: w = 4 * 6_000_000 / ms


@dataclass
class Captured:
    points: list[tuple[str, str, Fields, int | None]] = field(default_factory=list)

    def emit(self, device: str, channel: str, fields: Fields, ts_ms: int | None) -> None:
        self.points.append((device, channel, fields, ts_ms))


@pytest.fixture
def running(pty: Pty) -> Iterator[tuple[ReaderContext, Captured, Pty]]:
    captured = Captured()
    ctx = ReaderContext("lab", captured.emit, lambda: time.time_ns() // 1_000_000, threading.Event())
    reader = BlipSerialReader(device="mainmeter", port=pty.port, meters={"2": "heatpump"}, reopen_s=0.1)
    thread = threading.Thread(target=reader.run, args=(ctx,), daemon=True)
    thread.start()
    wait_for(lambda: ctx.counters["serial_opened"] >= 1, what="the reader to open the port")
    yield ctx, captured, pty
    ctx.stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_reader_skips_two_lines_then_stamps_blinks(running: tuple[ReaderContext, Captured, Pty]) -> None:
    ctx, captured, pty = running
    pty.write("34\r\n")  # a partial line from before the reset
    pty.write("5000\r\n")  # an interval measured from the reset
    before = time.time_ns() // 1_000_000
    pty.write("1000\r\n")
    pty.write("2 2000\r\nINFO 2 heat pump\r\n7 500\r\n")
    wait_for(lambda: len(captured.points) == 3, what="three blinks")
    after = time.time_ns() // 1_000_000
    (d1, c1, f1, ts1), (d2, _, f2, _), (d3, _, f3, _) = captured.points
    assert (d1, c1, f1) == ("mainmeter", "power", {"w": 3600.0, "ms": 1000})
    assert ts1 is not None and before <= ts1 <= after
    assert (d2, f2) == ("heatpump", {"w": 1800.0, "ms": 2000})
    assert (d3, f3) == ("mainmeter-7", {"w": 7200.0, "ms": 500})
    assert ctx.counters["serial_garbage"] == 0


def test_garbage_is_counted_never_fatal(running: tuple[ReaderContext, Captured, Pty]) -> None:
    ctx, captured, pty = running
    pty.write("x\r\ny\r\n")  # the two skipped lines
    pty.write("garbage\r\n0\r\n-5\r\n99999999999999\r\n\xff\r\n12.5\r\n")
    pty.write("Z" * 300)  # no newline at all: dropped once it exceeds the line limit
    pty.write("\r\n1000\r\n")
    wait_for(lambda: len(captured.points) == 1, what="the good blink after the garbage")
    assert captured.points[0][2] == {"w": 3600.0, "ms": 1000}
    assert ctx.counters["serial_garbage"] >= 7


def test_reader_survives_unplug_and_reopens(running: tuple[ReaderContext, Captured, Pty]) -> None:
    ctx, captured, pty = running
    pty.write("a\r\nb\r\n1000\r\n")
    wait_for(lambda: len(captured.points) == 1, what="a blink before the unplug")
    pty.unplug()
    wait_for(lambda: ctx.counters["serial_lost"] + ctx.counters["serial_open_errors"] >= 1,
             what="the reader to notice the port is gone")
    time.sleep(0.3)  # a few failed reopen attempts
    pty.plug()
    wait_for(lambda: ctx.counters["serial_opened"] >= 2, what="the reader to reopen the port")
    pty.write("c\r\nd\r\n2000\r\n")
    wait_for(lambda: len(captured.points) == 2, what="a blink after the replug")
    assert captured.points[1][2] == {"w": 1800.0, "ms": 2000}
