"""The live peers of a rack's management host, for `make bench` (agent_rss_mb) and `make soak`: a blink meter on a
pty, 3 BMCs (ipmi_sim answering DCMI power readings) and 2 PDUs (snmpsim: an APC and a Sentry4), and the agent
config that reads them all."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.peers import (
    BMC_PASSWORD,
    BMC_USER,
    IPMI_EXT_SOURCE,
    IpmiSim,
    Mosquitto,
    Pty,
    SnmpSim,
    secret_file,
    snmpsim_walk,
)

SENTRY4 = Path(__file__).parent.parent / "tests" / "testdata" / "snmp" / "servertech-sentry4.snmprec"


@dataclass
class Peers:
    bmcs: list[IpmiSim]
    pdus: SnmpSim
    pty: Pty


def _blink(pty: Pty, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        try:
            pty.write("3600\r\n")  # 1 kW at 1000 imp/kWh
        except OSError:
            return


@contextmanager
def reader_peers(work: Path) -> Iterator[Peers]:
    """The peers, running (the meter blinks every 0.5 s), until the block ends."""
    ext = work / "dcmi_power.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(ext), str(IPMI_EXT_SOURCE)], check=True)
    bmcs = [IpmiSim(work / f"bmc{i}", ext, (200 + 10 * i, 150, 300, 220)) for i in range(3)]
    pdus: SnmpSim | None = None
    pty, stop = Pty(work), threading.Event()
    try:
        for b in bmcs:
            b.start()
        pdus = SnmpSim({"apc": snmpsim_walk("apc-8641"), "sentry": SENTRY4})
        threading.Thread(target=_blink, args=(pty, stop), daemon=True).start()
        yield Peers(bmcs, pdus, pty)
    finally:
        stop.set()
        if pdus is not None:
            pdus.stop()
        for b in bmcs:
            b.stop()
        pty.unplug()


def agent_config(work: Path, broker: Mosquitto, peers: Peers, interval_s: float = 1.0) -> str:
    """`[mqtt]` and `[agent]` with every peer's reader, polled every `interval_s`."""
    secret_file(work / "bmc.pass", BMC_PASSWORD)
    hosts = ", ".join(f'{{ device = "node{i}", host = "127.0.0.1", port = {b.port}, username = "{BMC_USER}", '
                      f'password_file = "{work / "bmc.pass"}" }}' for i, b in enumerate(peers.bmcs, start=1))
    pdus = "".join(f"""
[[agent.readers]]
kind = "snmp_pdu"
device = "{device}"
host = "127.0.0.1"
port = {peers.pdus.port}
community = "{community}"
profile = "{profile}"
interval_s = {interval_s}
""" for device, community, profile in (("pdu-a", "apc", "apc"), ("pdu-b", "sentry", "servertech")))
    return f"""
[mqtt]
url = "{broker.url()}"

[agent]
site = "lab"
name = "soak"
outbox = "{work / "outbox.sqlite"}"

[[agent.readers]]
kind = "blip_serial"
device = "mainmeter"
port = "{peers.pty.port}"

[[agent.readers]]
kind = "ipmi_dcmi"
interval_s = {interval_s}
hosts = [ {hosts} ]
{pdus}"""
