"""`host_load` on this very host: load averages, and a busy process attributed to its group."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from edge_agent.readers import ReaderContext, reader_from_config
from edge_agent.readers.base import Fields
from edge_agent.readers.host_load import read_process_ticks
from telemetry import SeriesKey
from telemetry.config import ConfigError, Section
from tests.peers import wait_for


def test_process_ticks_include_ourselves() -> None:
    import os

    ticks = read_process_ticks()
    mine = [v for (pid, _), v in ticks.items() if pid == os.getpid()]
    assert mine and mine[0][1] >= 0


def test_busy_process_counts_for_its_group() -> None:
    busy = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    points: list[tuple[str, Fields]] = []
    reader = reader_from_config(Section({"kind": "host_load", "device": "node17", "interval_s": 0.5,
                                         "process_groups": {"spin": ["sh"]}}, "agent.readers[0]"))
    ctx = ReaderContext("lab", lambda d, c, f, ts: points.append((c, f)), lambda: time.time_ns() // 10**6,
                        threading.Event())
    thread = threading.Thread(target=reader.run, args=(ctx,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(points) >= 10, what="two polls")  # 3 load averages + 2 groups, twice
    finally:
        ctx.stop.set()
        thread.join(5)
        busy.kill()
        busy.wait()
    channels = {c for c, _ in points}
    assert channels == {"load1", "load5", "load15", "load-cpu-spin", "load-cpu-other"}
    assert all(SeriesKey("lab", "node17", c).measurement == "load" for c in channels)
    spin = [float(f["value"]) for c, f in points if c == "load-cpu-spin"]
    assert spin[-1] > 0.5  # one shell loop keeps one core busy
    assert all(f["value"] >= 0 for _, f in points)


def test_group_names_must_make_valid_channels() -> None:
    with pytest.raises(ConfigError, match=r"agent.readers\[0\].process_groups.Bad Name"):
        reader_from_config(Section({"kind": "host_load", "device": "n", "process_groups": {"Bad Name": ["x"]}},
                                   "agent.readers[0]"))
