"""`ipmi_dcmi`: server power from BMCs over IPMI, DCMI "Get Power Reading" (pyghmi).

Each BMC is polled by a thread of its own, so one slow or dead BMC never delays the others. Its IPMI session is
kept between polls and opened again when the BMC drops it. `ts` is the agent's clock: BMC clocks are unreliable.
A BMC that fails (timeout, wrong password, no DCMI) is logged once per outage and counted. A BMC whose power
measurement is not active (the reading's state byte; ipmitool says "deactivated") answers 0 W: no point is taken
from it, the change is logged, and every such reading is counted, until it measures again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

# pyghmi's Session, not its Command: the raw DCMI command is all we send, and Command's import (SDR, FRU, OEM
# handlers) would cost the agent another 9 MB.
from pyghmi.exceptions import IpmiException
from pyghmi.ipmi.private import session as ipmi_session

from edge_agent.readers.base import Fields, Reader, ReaderContext, register
from telemetry.config import Section
from telemetry.errors import PowerhubError
from telemetry.series import POWER_CHANNEL

log = logging.getLogger(__name__)

DCMI_NETFN = 0x2C
DCMI_GROUP = 0xDC
GET_POWER_READING = 0x02
STATE_MEASURING = 0x40  # "power measurement active" in the reading's state byte (DCMI 1.5, table 6-16)
STATE_OFFSET = 17  # after the group, four watts, the 32-bit timestamp and the 32-bit period


class DcmiError(PowerhubError, RuntimeError):
    """The BMC did not give a power reading; the message says why."""


@dataclass(frozen=True)
class Bmc:
    device: str
    host: str
    port: int
    username: str
    password: str
    timeout_s: float = 5.0


def parse_power_reading(data: bytes) -> Fields | None:
    """DCMI Get Power Reading response data (after the completion code): group, then four 16-bit LE watts, and
    the state byte; None when the BMC says its power measurement is not active (its watts are then 0, not a
    reading). A BMC that leaves out the state byte is taken as measuring."""
    if len(data) < 9 or data[0] != DCMI_GROUP:
        raise DcmiError(f"malformed DCMI power reading ({len(data)} bytes)")
    if len(data) > STATE_OFFSET and not data[STATE_OFFSET] & STATE_MEASURING:
        return None
    current, minimum, maximum, average = (int.from_bytes(data[i : i + 2], "little") for i in (1, 3, 5, 7))
    return {"w": float(current), "min_w": float(minimum), "max_w": float(maximum), "avg_w": float(average)}


def forget_session(session: Any) -> None:
    """Drop a broken session from pyghmi's process-wide caches.

    pyghmi 1.6 leaves a session that failed mid-command in `Session.initting_sessions`, and hands that same broken
    session to every later `Session()` for the BMC, so without this a BMC that restarted is never read again.
    """
    cls = type(session)
    for key, cached in list(getattr(cls, "initting_sessions", {}).items()):
        if cached is session:
            del cls.initting_sessions[key]
    for handlers in getattr(cls, "bmc_handlers", {}).values():
        for key, cached in list(handlers.items()):
            if cached is session:
                del handlers[key]


def read_power(session: Any) -> Fields | None:
    rsp = session.raw_command(netfn=DCMI_NETFN, command=GET_POWER_READING, data=(DCMI_GROUP, 0x01, 0x00, 0x00))
    if rsp.get("error") or rsp.get("code"):
        code = rsp.get("code")
        reason = "no DCMI power reading" if code in (0xC1, 0xC3, 0xD4, 0xD5) else str(rsp.get("error"))
        raise DcmiError(f"{reason} (completion code {code:#04x})" if isinstance(code, int) else reason)
    return parse_power_reading(bytes(rsp["data"]))


@register("ipmi_dcmi")
@dataclass
class IpmiDcmiReader(Reader):
    hosts: list[Bmc]
    interval_s: float = 10.0
    count: int | None = None
    counters_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return f"ipmi_dcmi({', '.join(self.devices)})"

    @property
    def devices(self) -> list[str]:
        return [b.device for b in self.hosts]

    @classmethod
    def from_config(cls, sec: Section) -> IpmiDcmiReader:
        hosts = []
        for h in sec.tables("hosts"):
            hosts.append(Bmc(device=h.name("device"), host=h.string("host"), port=h.integer("port", 623, min_value=1),
                             username=h.string("username"), password=h.secret("password", required=True) or "",
                             timeout_s=h.number("timeout_s", 5.0, positive=True)))
            h.finish()
        if not hosts:
            raise sec.error("hosts", "at least one BMC is required")
        return cls(hosts=hosts, interval_s=sec.number("interval_s", 10.0, positive=True),
                   count=sec.integer("count", None, min_value=1))

    def run(self, ctx: ReaderContext) -> None:
        threads = [threading.Thread(target=self._poll_bmc, args=(bmc, ctx), name=f"bmc-{bmc.device}", daemon=True)
                   for bmc in self.hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _count(self, ctx: ReaderContext, name: str) -> None:
        with self.counters_lock:
            ctx.counters[name] += 1

    def _poll_bmc(self, bmc: Bmc, ctx: ReaderContext) -> None:
        session: Any = None
        failing = inactive = False
        polls = 0
        while not ctx.stop.is_set() and (self.count is None or polls < self.count):
            try:
                if session is None:
                    session = ipmi_session.Session(bmc=bmc.host, userid=bmc.username, password=bmc.password,
                                                   port=bmc.port)
                    # pyghmi's per-session retry budget: a command that gets no answer fails after a few times this.
                    session.maxtimeout = bmc.timeout_s
                fields = read_power(session)
            except (IpmiException, DcmiError, OSError) as exc:
                self._count(ctx, "ipmi_errors")
                if not failing:
                    log.error("%s: BMC %s:%d: %s (logged once until it answers again)", bmc.device, bmc.host,
                              bmc.port, exc or exc.__class__.__name__)
                    failing = True
                if not isinstance(exc, DcmiError) and session is not None:
                    forget_session(session)  # the session is gone: log in again next time
                    session = None
            else:
                if failing:
                    log.info("%s: BMC %s:%d answers again", bmc.device, bmc.host, bmc.port)
                    failing = False
                if (fields is None) != inactive:
                    inactive = fields is None
                    if inactive:
                        log.warning("%s: BMC %s:%d says its power measurement is not active: no readings until it "
                                    "is", bmc.device, bmc.host, bmc.port)
                    else:
                        log.info("%s: BMC %s:%d measures power again", bmc.device, bmc.host, bmc.port)
                if fields is None:
                    self._count(ctx, "ipmi_inactive")
                else:
                    ctx.emit(bmc.device, POWER_CHANNEL, fields, None)
                polls += 1
            ctx.stop.wait(self.interval_s)
