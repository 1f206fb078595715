"""The `ipmi_dcmi` reader against OpenIPMI's ipmi_sim with our DCMI extension; ipmitool is the reference."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.readers import ReaderContext, reader_from_config
from edge_agent.readers.base import Fields
from edge_agent.readers.ipmi_dcmi import DcmiError, parse_power_reading
from telemetry.config import ConfigError, Section
from tests.peers import BMC_PASSWORD, BMC_USER, IpmiSim, free_port_udp, wait_for

pytestmark = pytest.mark.peers  # starts real programs of its own: `make test` only


@pytest.fixture
def bmc(tmp_path: Path, dcmi_extension: Path) -> Iterator[IpmiSim]:
    sim = IpmiSim(tmp_path / "bmc", dcmi_extension, (251, 181, 421, 261))
    sim.start()
    yield sim
    sim.stop()


class Run:
    def __init__(self, hosts: list[dict[str, Any]], interval_s: float = 0.2) -> None:
        self.points: list[tuple[str, Fields]] = []
        self.reader = reader_from_config(Section({"kind": "ipmi_dcmi", "interval_s": interval_s, "hosts": hosts},
                                                 "agent.readers[0]"))
        self.ctx = ReaderContext("lab", lambda d, c, f, ts: self.points.append((d, f)),
                                 lambda: time.time_ns() // 10**6, threading.Event())
        self.thread = threading.Thread(target=self.reader.run, args=(self.ctx,), daemon=True)
        self.thread.start()

    def of(self, device: str) -> list[Fields]:
        return [f for d, f in list(self.points) if d == device]

    def stop(self) -> None:
        self.ctx.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()


def host(device: str, port: int, password: str = BMC_PASSWORD) -> dict[str, Any]:
    return {"device": device, "host": "127.0.0.1", "port": port, "username": BMC_USER, "password": password}


def test_reader_reads_what_ipmitool_reads(bmc: IpmiSim) -> None:
    out = bmc.ipmitool("dcmi", "power", "reading").stdout
    ipmitool_w = int(re.search(r"Instantaneous power reading:\s+(\d+) Watts", out).group(1))  # type: ignore[union-attr]
    run = Run([host("node17", bmc.port)])
    try:
        wait_for(lambda: len(run.of("node17")) >= 3, what="three readings")
    finally:
        run.stop()
    assert ipmitool_w == 251
    assert run.of("node17")[0] == {"w": 251.0, "min_w": 181.0, "max_w": 421.0, "avg_w": 261.0}


def test_failing_bmcs_do_not_stop_the_good_one(bmc: IpmiSim, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    no_dcmi = IpmiSim(tmp_path / "plain", None)  # ipmi_sim as shipped: basic IPMI, DCMI answers 0xC1
    no_dcmi.start()
    try:
        run = Run([host("good", bmc.port), host("wrongpw", bmc.port, "nope"), host("plain", no_dcmi.port),
                   host("dead", free_port_udp())])
        try:
            wait_for(lambda: len(run.of("good")) >= 10, timeout_s=20, what="ten good readings")
            wait_for(lambda: run.ctx.counters["ipmi_errors"] >= 6, what="errors from the failing BMCs")
        finally:
            run.stop()
    finally:
        no_dcmi.stop()
    assert run.of("wrongpw") == run.of("plain") == run.of("dead") == []
    messages = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    for device, reason in (("wrongpw", "password"), ("plain", "no DCMI power reading")):
        logged = [m for m in messages if m.startswith(f"{device}:")]
        assert len(logged) == 1 and reason in logged[0], messages  # once per outage, with the reason


def test_reader_logs_in_again_after_the_bmc_restarts(bmc: IpmiSim) -> None:
    run = Run([{**host("node17", bmc.port), "timeout_s": 1}])
    try:
        wait_for(lambda: len(run.of("node17")) >= 2, what="readings before the restart")
        bmc.stop()
        # With timeout_s = 1 pyghmi gives up on the dead session after ~9 s.
        wait_for(lambda: run.ctx.counters["ipmi_errors"] >= 1, timeout_s=20, what="the reader to notice")
        before = len(run.of("node17"))
        bmc.start()
        wait_for(lambda: len(run.of("node17")) > before, timeout_s=30, what="readings after the restart")
    finally:
        run.stop()


def test_no_reading_while_the_measurement_is_not_active(bmc: IpmiSim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "edge_agent.readers.ipmi_dcmi")
    bmc.measuring(False)
    assert "deactivated" in bmc.ipmitool("dcmi", "power", "reading").stdout.lower()  # the reference says so too
    run = Run([host("node17", bmc.port)], interval_s=0.1)
    try:
        wait_for(lambda: run.ctx.counters["ipmi_inactive"] >= 5, what="inactive readings")
        assert run.of("node17") == []  # not a stream of 0 W
        bmc.measuring(True)
        wait_for(lambda: len(run.of("node17")) >= 3, what="readings once it measures again")
        inactive = run.ctx.counters["ipmi_inactive"]
        bmc.measuring(False)
        wait_for(lambda: run.ctx.counters["ipmi_inactive"] >= inactive + 5, what="inactive again")
        readings = len(run.of("node17"))
        time.sleep(0.5)
        assert len(run.of("node17")) == readings
    finally:
        run.stop()
    assert all(f["w"] == 251.0 for f in run.of("node17"))
    messages = [r.getMessage() for r in caplog.records if r.name.endswith("ipmi_dcmi")]
    changes = [m for m in messages if "not active" in m or "measures power again" in m]
    assert len(changes) == 3, messages  # each change once, not each interval
    assert run.ctx.counters["ipmi_errors"] == 0


def test_parse_power_reading_refuses_garbage() -> None:
    with pytest.raises(DcmiError):
        parse_power_reading(b"\xdc\x01")
    with pytest.raises(DcmiError):
        parse_power_reading(b"\x00" * 18)
    reading = bytes([0xDC, 0xFB, 0, 0xB5, 0, 0xA5, 1, 0x05, 1])
    assert parse_power_reading(reading) == {"w": 251.0, "min_w": 181.0, "max_w": 421.0, "avg_w": 261.0}
    stamp_and_period = bytes(8)
    assert parse_power_reading(reading + stamp_and_period + b"\x40") is not None
    assert parse_power_reading(reading + stamp_and_period + b"\x00") is None


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent.readers\[0\].hosts: at least one BMC"):
        reader_from_config(Section({"kind": "ipmi_dcmi"}, "agent.readers[0]"))
    with pytest.raises(ConfigError, match=r"agent.readers\[0\].hosts\[0\].password: required"):
        reader_from_config(Section({"kind": "ipmi_dcmi", "hosts": [{"device": "n", "host": "h", "username": "u"}]},
                                   "agent.readers[0]"))
    with pytest.raises(ConfigError, match=r"hosts\[0\].password_file: cannot read"):
        reader_from_config(Section({"kind": "ipmi_dcmi", "hosts": [
            {"device": "n", "host": "h", "username": "u", "password_file": str(tmp_path / "missing")}]},
            "agent.readers[0]"))
