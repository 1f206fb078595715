"""The `snmp_pdu` reader against snmpsim serving recorded walks of real PDUs (snmpsim-data) and moving values."""

from __future__ import annotations

import bz2
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.readers import ReaderContext, reader_from_config
from edge_agent.readers.base import Fields
from telemetry.config import ConfigError, Section
from tests.peers import SNMP_V3, SnmpSim, secret_file, snmpsim_walk, wait_for

pytestmark = pytest.mark.peers  # starts real programs of its own: `make test` only

APC_OUTLETS = "1.3.6.1.4.1.318.1.1.26.9.4.3.1"
APC_DEVICE = "1.3.6.1.4.1.318.1.1.26.4.3.1"
UPS_OUTPUT = "1.3.6.1.2.1.33.1.4.4.1"
HAND_WRITTEN = Path(__file__).parent / "testdata" / "snmp"  # PDUs with no published walk, written from their MIBs
RARITAN = "1.3.6.1.4.1.13742.6"
SENTRY4 = "1.3.6.1.4.1.1718.4.1"
# A PDU whose outlet power moves (snmpsim's numeric variation) and whose outlet 3 reports "unsupported" (-1).
MOVING = f"""1.3.6.1.2.1.1.1.0|4|moving test PDU (recorded by hand for powerhub's tests)
{APC_OUTLETS}.7.1|2:numeric|function=sin%<time>,rate=0.5,scale=50,offset=160
{APC_OUTLETS}.7.2|2|40
{APC_OUTLETS}.7.3|2|-1
"""


def read_walk(path: Path) -> dict[str, str]:
    """oid -> value as text, from a .snmprec file (`oid|type|value`; types ending in `x` are hex-encoded)."""
    opener = bz2.open if path.suffix == ".bz2" else open
    out = {}
    with opener(path, "rt") as fh:  # type: ignore[operator]
        for line in fh:
            parts = line.rstrip("\n").split("|", 2)
            if len(parts) == 3:
                oid, kind, value = parts
                out[oid] = bytes.fromhex(value).decode("latin-1") if kind.endswith("x") else value
    return out


@pytest.fixture(scope="module")
def snmpsim() -> Iterator[SnmpSim]:
    sim = SnmpSim({"apc": snmpsim_walk("apc-8641"), "apcold": snmpsim_walk("apc-7902b"),
                   "ups": snmpsim_walk("eaton-93e-80"), "moving": MOVING,
                   "raritan": HAND_WRITTEN / "raritan-px2.snmprec",
                   "sentry": HAND_WRITTEN / "servertech-sentry4.snmprec"})
    yield sim
    sim.stop()


class Capture:
    def __init__(self) -> None:
        self.points: list[tuple[str, str, Fields]] = []
        self.lock = threading.Lock()

    def emit(self, device: str, channel: str, fields: Fields, _ts: int | None) -> None:
        with self.lock:
            self.points.append((device, channel, fields))


def run_reader(config: dict[str, Any], until: int, timeout_s: float = 15) -> tuple[Capture, ReaderContext]:
    """Run a reader built from config until it emitted `until` points (or, with until=0, for one interval)."""
    reader = reader_from_config(Section({"kind": "snmp_pdu", "device": "pdu-a3", "interval_s": 0.5, **config},
                                        "agent.readers[0]"))
    capture = Capture()
    ctx = ReaderContext("lab", capture.emit, lambda: time.time_ns() // 1_000_000, threading.Event())
    thread = threading.Thread(target=reader.run, args=(ctx,), daemon=True)
    thread.start()
    try:
        if until:
            wait_for(lambda: len(capture.points) >= until, timeout_s, f"{until} points")
        else:
            time.sleep(timeout_s)
    finally:
        ctx.stop.set()
        thread.join(10)
    assert not thread.is_alive()
    return capture, ctx


def first_poll(capture: Capture) -> dict[str, Fields]:
    out: dict[str, Fields] = {}
    for _, channel, fields in capture.points:
        if channel in out:
            break
        out[channel] = fields
    return out


def test_apc_outlets_equal_the_walk_after_scaling(snmpsim: SnmpSim) -> None:
    walk = read_walk(snmpsim_walk("apc-8641"))
    capture, ctx = run_reader({"host": "127.0.0.1", "port": snmpsim.port, "community": "apc", "profile": "apc"}, 28)
    got = first_poll(capture)
    assert len(got) == 28 and ctx.counters["snmp_errors"] == 0
    for n in range(1, 25):
        name = walk[f"{APC_OUTLETS}.3.{n}"]
        assert got[f"outlet-{n}"] == {
            "name": name,
            "a": pytest.approx(int(walk[f"{APC_OUTLETS}.6.{n}"]) * 0.1),
            "w": float(walk[f"{APC_OUTLETS}.7.{n}"]),
            "wh": int(walk[f"{APC_OUTLETS}.11.{n}"]) * 100.0,
        }
    assert got["total"] == {"w": int(walk[f"{APC_DEVICE}.5.1"]) * 10.0, "wh": int(walk[f"{APC_DEVICE}.9.1"]) * 100.0}
    assert got["outlet-1"]["name"] == "CP-CM-SAN-01" and got["outlet-1"]["w"] == 163.0
    # The input phase as the recorded AP8641 answers it, and its two breaker banks, with the PDU's own thresholds.
    assert got["phase-1"] == {"a": pytest.approx(6.5), "v": 201.0, "w": 1220.0, "va": 1310.0, "pf": pytest.approx(0.94),
                              "warn_a": 19.0, "limit_a": 24.0}
    assert got["bank-1"] == {"a": pytest.approx(3.8), "warn_a": 16.0, "limit_a": 20.0}
    assert got["bank-2"] == {"a": pytest.approx(2.4), "warn_a": 16.0, "limit_a": 20.0}


def test_apc_without_metered_outlets_falls_back_to_device_power(snmpsim: SnmpSim) -> None:
    walk = read_walk(snmpsim_walk("apc-7902b"))
    capture, _ = run_reader({"host": "127.0.0.1", "port": snmpsim.port, "community": "apcold", "profile": "apc"}, 4)
    rpdu2 = "1.3.6.1.4.1.318.1.1.26"
    # Its power from the older rPDU tables; its phase and banks (current only) from rPDU2's, as the walk has them.
    assert first_poll(capture) == {
        "total": {"w": float(walk["1.3.6.1.4.1.318.1.1.12.1.16.0"])},
        "phase-1": {"a": pytest.approx(int(walk[f"{rpdu2}.6.3.1.5.1"]) * 0.1), "warn_a": 19.0, "limit_a": 24.0},
        **{f"bank-{n}": {"a": pytest.approx(int(walk[f"{rpdu2}.8.3.1.5.{n}"]) * 0.1), "warn_a": 16.0,
                         "limit_a": 20.0} for n in (1, 2)},
    }


def test_ups_mib_output_lines(snmpsim: SnmpSim) -> None:
    walk = read_walk(snmpsim_walk("eaton-93e-80"))
    capture, _ = run_reader({"host": "127.0.0.1", "port": snmpsim.port, "community": "ups", "profile": "ups-mib",
                             "version": "1"}, 4)
    got = first_poll(capture)
    lines = [f"outlet-{n}" for n in (1, 2, 3)]
    for n, channel in enumerate(lines, start=1):
        assert got[channel] == {"a": pytest.approx(int(walk[f"{UPS_OUTPUT}.3.{n}"]) * 0.1),
                                "w": float(walk[f"{UPS_OUTPUT}.4.{n}"])}
    assert got["total"] == {"w": sum(float(walk[f"{UPS_OUTPUT}.4.{n}"]) for n in (1, 2, 3))}


def test_raritan_values_are_scaled_by_their_decimal_digits(snmpsim: SnmpSim) -> None:
    walk = read_walk(HAND_WRITTEN / "raritan-px2.snmprec")
    capture, ctx = run_reader({"host": "127.0.0.1", "port": snmpsim.port, "community": "raritan",
                               "profile": "raritan"}, 9)
    got = first_poll(capture)
    # outlet 3 has no power sensor; inlet 1's three poles and the two overcurrent protectors
    assert set(got) == {"outlet-1", "outlet-2", "outlet-4", "total", "phase-1", "phase-2", "phase-3", "bank-1",
                        "bank-2"}
    for n in (1, 2, 4):
        value = f"{RARITAN}.5.4.3.1.4.1.{n}"
        current_digits = int(walk[f"{RARITAN}.3.5.4.1.7.1.{n}.1"])
        expected = {"a": pytest.approx(int(walk[f"{value}.1"]) / 10**current_digits),
                    "w": float(walk[f"{value}.5"]), "wh": float(walk[f"{value}.8"])}
        if name := walk[f"{RARITAN}.3.5.3.1.3.1.{n}"]:
            expected["name"] = name
        assert got[f"outlet-{n}"] == expected
    assert got["outlet-1"]["a"] == 1.234  # 1234 with 3 decimal digits
    assert got["total"] == {"w": float(walk[f"{RARITAN}.5.2.3.1.4.1.1.5"]),
                            "wh": float(walk[f"{RARITAN}.5.2.3.1.4.1.1.8"])}
    for pole in (1, 2, 3):
        value, config = f"{RARITAN}.5.2.4.1.4.1.1.{pole}", f"{RARITAN}.3.3.6.1"
        milli = 10 ** int(walk[f"{config}.7.1.1.{pole}.1"])
        assert got[f"phase-{pole}"] == {"a": pytest.approx(int(walk[f"{value}.1"]) / milli),
                                        "v": float(walk[f"{value}.4"]), "w": float(walk[f"{value}.5"]),
                                        "limit_a": pytest.approx(int(walk[f"{config}.23.1.1.{pole}.1"]) / milli),
                                        "warn_a": pytest.approx(int(walk[f"{config}.24.1.1.{pole}.1"]) / milli)}
    assert got["phase-3"] == {"a": 5.12, "v": 230.0, "w": 1170.0, "limit_a": 16.0, "warn_a": 12.8}
    assert got["bank-1"] == {"a": 2.345, "limit_a": 16.0, "warn_a": 12.8}
    assert got["bank-2"]["a"] == 1.877
    assert ctx.counters["snmp_errors"] == 0


def test_servertech_outlets_per_cord_and_total_of_the_cords(snmpsim: SnmpSim) -> None:
    walk = read_walk(HAND_WRITTEN / "servertech-sentry4.snmprec")
    capture, _ = run_reader({"host": "127.0.0.1", "port": snmpsim.port, "community": "sentry",
                             "profile": "servertech"}, 9)
    got = first_poll(capture)
    # cord 1's outlets are outlet-N as on the label; cord 2's keep the cord; AA4 reports -1 (unsupported): skipped
    assert list(got) == ["outlet-1", "outlet-2", "outlet-3", "outlet-2-1", "total", "phase-1", "phase-2-1", "bank-1",
                         "bank-2"]
    for channel, index in (("outlet-1", "1.1"), ("outlet-2", "1.2"), ("outlet-3", "1.3"), ("outlet-2-1", "2.1")):
        assert got[channel] == {"name": walk[f"{SENTRY4}.8.2.1.3.1.{index}"],
                                "a": pytest.approx(int(walk[f"{SENTRY4}.8.3.1.3.1.{index}"]) * 0.01),
                                "w": float(walk[f"{SENTRY4}.8.3.1.7.1.{index}"]),
                                "wh": float(walk[f"{SENTRY4}.8.3.1.14.1.{index}"])}
    cords = (1, 2)
    assert got["total"] == {"w": sum(float(walk[f"{SENTRY4}.3.3.1.3.1.{c}"]) for c in cords),
                            "wh": pytest.approx(sum(int(walk[f"{SENTRY4}.3.3.1.10.1.{c}"]) * 100.0 for c in cords))}
    # Each cord's line and cord 1's branches, in amps, with their high warning and alarm (tenths of amps).
    for channel, table, index in (("phase-1", 4, "1.1"), ("phase-2-1", 4, "2.1"), ("bank-1", 7, "1.1"),
                                  ("bank-2", 7, "1.2")):
        assert got[channel] == {"a": pytest.approx(int(walk[f"{SENTRY4}.{table}.3.1.3.1.{index}"]) * 0.01),
                                "warn_a": pytest.approx(int(walk[f"{SENTRY4}.{table}.4.1.4.1.{index}"]) * 0.1),
                                "limit_a": pytest.approx(int(walk[f"{SENTRY4}.{table}.4.1.5.1.{index}"]) * 0.1)}
    assert got["phase-1"] == {"a": 8.42, "warn_a": 12.8, "limit_a": 16.0}


def test_snmp_v3_auth_priv(snmpsim: SnmpSim, tmp_path: Path) -> None:
    secret_file(tmp_path / "auth", SNMP_V3["auth_key"])
    secret_file(tmp_path / "priv", SNMP_V3["priv_key"])
    config = {"host": "127.0.0.1", "port": snmpsim.port, "version": "3", "user": SNMP_V3["user"],
              "auth_protocol": "sha", "auth_key_file": str(tmp_path / "auth"), "priv_protocol": "aes",
              "priv_key_file": str(tmp_path / "priv"), "context": "apc", "profile": "apc"}
    capture, _ = run_reader(config, 25)
    assert first_poll(capture)["outlet-1"]["w"] == 163.0


def test_moving_values_and_unsupported_outlets(snmpsim: SnmpSim) -> None:
    config = {"host": "127.0.0.1", "port": snmpsim.port, "community": "moving", "profile": "custom",
              "outlet_oids": {"w": f"{APC_OUTLETS}.7"}, "interval_s": 0.3}
    capture, _ = run_reader(config, 16, timeout_s=20)
    by_channel: dict[str, list[float]] = {}
    for _, channel, fields in capture.points:
        by_channel.setdefault(channel, []).append(float(fields["w"]))
    assert set(by_channel) == {"outlet-1", "outlet-2"}  # outlet 3 said -1: skipped, not stored as -1
    assert set(by_channel["outlet-2"]) == {40.0}
    assert len(set(by_channel["outlet-1"])) > 1 and all(110 <= w <= 210 for w in by_channel["outlet-1"])


def test_no_such_object_yields_nothing_and_is_counted(snmpsim: SnmpSim) -> None:
    config = {"host": "127.0.0.1", "port": snmpsim.port, "community": "apc", "profile": "custom",
              "outlet_oids": {"w": "1.3.6.1.4.1.99999.1.1"}, "total_oids": {"w": "1.3.6.1.4.1.99999.2.0"}}
    capture, ctx = run_reader(config, 0, timeout_s=1.5)
    assert capture.points == []
    assert ctx.counters["snmp_empty_polls"] >= 2 and ctx.counters["snmp_errors"] == 0


def test_wrong_community_times_out_logged_once(snmpsim: SnmpSim, caplog: pytest.LogCaptureFixture) -> None:
    config = {"host": "127.0.0.1", "port": snmpsim.port, "community": "wrong", "profile": "apc",
              "timeout_s": 0.2, "retries": 0, "interval_s": 0.1}
    capture, ctx = run_reader(config, 0, timeout_s=2)
    assert capture.points == []
    assert ctx.counters["snmp_errors"] >= 3
    assert len([r for r in caplog.records if "No SNMP response" in r.getMessage()]) == 1


def test_garbage_answers_are_dropped_and_the_poll_times_out(caplog: pytest.LogCaptureFixture) -> None:
    """A peer that answers every request with bytes that are not an SNMP message (or are, of the wrong version):
    nothing is emitted, each poll is an error, and the reader goes on."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(0.1)
    stop = threading.Event()
    answered: list[bytes] = []

    def answer() -> None:
        garbage = [b"\x00\xffnot asn.1", b"\x30\x03\x02\x01\x00"]  # junk; an SNMPv1 header with no PDU
        while not stop.is_set():
            try:
                data, addr = peer.recvfrom(65535)
            except TimeoutError:
                continue
            answered.append(data)
            peer.sendto(garbage[len(answered) % 2], addr)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        config = {"host": "127.0.0.1", "port": peer.getsockname()[1], "community": "apc", "profile": "apc",
                  "timeout_s": 0.2, "retries": 1, "interval_s": 0.1}
        capture, ctx = run_reader(config, 0, timeout_s=2)
    finally:
        stop.set()
        thread.join(5)
        peer.close()
    assert capture.points == []
    assert ctx.counters["snmp_errors"] >= 2
    assert len(answered) >= 2 * ctx.counters["snmp_errors"]  # each poll was sent, and retried once
    assert len([r for r in caplog.records if "No SNMP response" in r.getMessage()]) == 1


def test_a_host_that_does_not_resolve_is_a_poll_error(caplog: pytest.LogCaptureFixture) -> None:
    config = {"host": "no-such-pdu.invalid", "community": "public", "profile": "apc", "interval_s": 0.1}
    capture, ctx = run_reader(config, 0, timeout_s=1)
    assert capture.points == []
    assert ctx.counters["snmp_errors"] >= 2
    [record] = [r for r in caplog.records if "cannot open a socket" in r.getMessage()]
    assert "no-such-pdu.invalid" in record.getMessage()


def test_v1_and_v2c_readers_load_neither_the_snmpv3_engine_nor_asyncio(snmpsim: SnmpSim) -> None:
    """The agent's memory budget: pysnmp's engine, its MIB builder and asyncio are for SNMPv3 readers only. The
    reader polls the real PDU (snmpsim) in a process of its own, then says what it imported."""
    code = f"""
import sys, threading, time
from edge_agent.readers import ReaderContext, reader_from_config
from telemetry.config import Section

points = []
reader = reader_from_config(Section({{"kind": "snmp_pdu", "device": "p", "host": "127.0.0.1",
                                      "port": {snmpsim.port}, "community": "apc", "profile": "apc"}}, "r"))
ctx = ReaderContext("lab", lambda *a: points.append(a), lambda: time.time_ns() // 1_000_000, threading.Event())
threading.Thread(target=reader.run, args=(ctx,), daemon=True).start()
deadline = time.monotonic() + 20
while not points and time.monotonic() < deadline:
    time.sleep(0.05)
ctx.stop.set()
print(len(points) > 0, sorted(m for m in sys.modules
      if m == "asyncio" or m.startswith(("pysnmp.entity", "pysnmp.smi.builder", "pysnmp.hlapi"))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "True []", out.stderr[-2000:]


def test_a_silent_pdu_does_not_hold_up_the_others(snmpsim: SnmpSim) -> None:
    silent = {"community": "wrong", "timeout_s": 1.0, "retries": 1}
    configs = [{"device": "pdu-slow", **silent}, {"device": "pdu-a3", "community": "apc"},
               {"device": "pdu-b3", "community": "apcold"}]
    readers = [reader_from_config(Section({"kind": "snmp_pdu", "host": "127.0.0.1", "port": snmpsim.port,
                                           "profile": "apc", "interval_s": 0.2, **c}, f"agent.readers[{i}]"))
               for i, c in enumerate(configs)]
    capture = Capture()
    ctx = ReaderContext("lab", capture.emit, lambda: time.time_ns() // 1_000_000, threading.Event())
    threads = [threading.Thread(target=r.run, args=(ctx,), daemon=True) for r in readers]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)  # the silent PDU is still in its first poll (1 s, then a 1 s retry)
        with capture.lock:
            polls = Counter(device for device, channel, _ in capture.points if channel == "total")
    finally:
        ctx.stop.set()
        for t in threads:
            t.join(10)
    assert polls["pdu-slow"] == 0
    assert polls["pdu-a3"] >= 4 and polls["pdu-b3"] >= 4  # every 0.2 s while the other waits


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"host": "h", "profile": "apc"}, "agent.readers[0].community: required for SNMP v2c"),
        ({"host": "h", "profile": "acme", "community": "c"}, "agent.readers[0].profile: must be one of"),
        ({"host": "h", "profile": "apc", "version": "3"}, "agent.readers[0].user: required"),
        ({"host": "h", "profile": "apc", "version": "3", "user": "u", "auth_protocol": "sha"},
         "agent.readers[0].auth_key: required"),
        ({"host": "h", "profile": "custom", "community": "c"}, "agent.readers[0].outlet_oids: custom profile needs"),
        ({"host": "h", "profile": "apc", "community": "c", "interval_s": 0}, "interval_s: must be greater than 0"),
    ],
)
def test_config_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        reader_from_config(Section({"kind": "snmp_pdu", "device": "pdu", **config}, "agent.readers[0]"))
    assert message in str(exc.value)
