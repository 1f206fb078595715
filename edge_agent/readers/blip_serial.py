"""`blip_serial`: an Arduino that prints the milliseconds between meter LED blinks (blipserver-api.md, "Serial lines").

Two line formats share one port: labitat's bare `<ms>` (a blink of this reader's device) and Studentergaarden's
`<id> <ms>` (a blink of meter `<id>`), plus its `CONNECTED...`/`INFO ...` chatter. `ts` is the host clock when the
line's newline arrived; the Arduino's `ms` is kept as sent.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import serial

from edge_agent.readers.base import Fields, Reader, ReaderContext, register
from telemetry.config import Section
from telemetry.errors import PowerhubError
from telemetry.series import POWER_CHANNEL

log = logging.getLogger(__name__)

MAX_MS = 2**31 - 1  # an Arduino's millis() difference; beyond ~24.8 days a line is noise, not a blink
MAX_LINE_BYTES = 256
LINE_RE = re.compile(r"(?:(\d{1,9})\s+)?(-?\d+)")
CHATTER_PREFIXES = ("CONNECTED", "INFO")


class LineError(PowerhubError, ValueError):
    """A line that is not a blink; the message says why."""


def parse_line(raw: bytes) -> tuple[str | None, int] | None:
    """`(meter_id or None, ms)` for a blink, None for known chatter; LineError for anything else."""
    try:
        line = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise LineError("not ASCII") from None
    if not line:
        raise LineError("empty line")
    if line.startswith(CHATTER_PREFIXES):
        return None
    m = LINE_RE.fullmatch(line)
    if not m:
        raise LineError(f"not a blink: {line[:40]!r}")
    digits = m.group(2)
    if digits.startswith("-"):
        raise LineError(f"negative interval {digits[:20]}")
    if len(digits) > 10 or int(digits) > MAX_MS:
        raise LineError(f"absurd interval {digits[:20]}")
    ms = int(digits)
    if ms == 0:
        raise LineError("zero interval")
    return m.group(1), ms


def blink_watts(ms: int, imp_per_kwh: float, ct_ratio: float) -> float:
    """Mean power over one blink interval (SPEC.md section 6)."""
    return ct_ratio * 3_600_000_000 / (imp_per_kwh * ms)


@register("blip_serial")
@dataclass
class BlipSerialReader(Reader):
    device: str
    port: str
    baudrate: int = 9600
    imp_per_kwh: float = 1000.0
    ct_ratio: float = 1.0
    skip_lines_on_open: int = 2
    meters: dict[str, str] = field(default_factory=dict)
    reopen_s: float = 1.0

    @property
    def devices(self) -> list[str]:
        return [self.device, *self.meters.values()]  # an unmapped meter id is announced when it first blinks

    @classmethod
    def from_config(cls, sec: Section) -> BlipSerialReader:
        meters = sec.str_map("meters")
        for meter_id, device in meters.items():
            if not meter_id.isdigit():
                raise sec.error(f"meters.{meter_id}", "meter ids are the digits the Arduino prints")
            Section({"device": device}, sec.key_path(f"meters.{meter_id}")).name("device")
        return cls(
            device=sec.name("device"),
            port=sec.string("port"),
            baudrate=sec.integer("baudrate", 9600, min_value=50),
            imp_per_kwh=sec.number("imp_per_kwh", 1000.0, positive=True),
            ct_ratio=sec.number("ct_ratio", 1.0, positive=True),
            skip_lines_on_open=sec.integer("skip_lines_on_open", 2, min_value=0),
            meters=meters,
            reopen_s=sec.number("reopen_s", 1.0, positive=True),
        )

    def run(self, ctx: ReaderContext) -> None:
        down_since_logged = False
        while not ctx.stop.is_set():
            try:
                port = serial.Serial(self.port, self.baudrate, timeout=0.2)
            except (serial.SerialException, OSError) as exc:
                if not down_since_logged:
                    log.error("%s: cannot open %s (%s); retrying every %.0f s",
                              self.device, self.port, exc, self.reopen_s)
                    down_since_logged = True
                ctx.counters["serial_open_errors"] += 1
                ctx.stop.wait(self.reopen_s)
                continue
            log.info("%s: reading blinks from %s", self.device, self.port)
            ctx.counters["serial_opened"] += 1
            down_since_logged = False
            try:
                self._read_port(port, ctx)
            except (serial.SerialException, OSError) as exc:
                log.error("%s: %s went away (%s); reopening", self.device, self.port, exc)
                ctx.counters["serial_lost"] += 1
            finally:
                port.close()

    def _read_port(self, port: serial.Serial, ctx: ReaderContext) -> None:
        skip = self.skip_lines_on_open
        buf = bytearray()
        while not ctx.stop.is_set():
            chunk = port.read(max(1, port.in_waiting))
            if not chunk:
                continue
            now_ms = ctx.now_ms()
            buf += chunk
            while (nl := buf.find(b"\n")) >= 0:
                line, buf = bytes(buf[:nl]), buf[nl + 1 :]
                if skip:
                    skip -= 1
                    continue
                self._handle(line, now_ms, ctx)
            if len(buf) > MAX_LINE_BYTES:
                log.warning("%s: dropping %d bytes with no newline", self.device, len(buf))
                ctx.counters["serial_garbage"] += 1
                buf.clear()

    def _handle(self, line: bytes, ts_ms: int, ctx: ReaderContext) -> None:
        try:
            parsed = parse_line(line)
        except LineError as exc:
            log.warning("%s: ignoring serial line: %s", self.device, exc)
            ctx.counters["serial_garbage"] += 1
            return
        if parsed is None:
            log.info("%s: %s", self.device, line.decode("ascii", "replace").strip())
            return
        meter_id, ms = parsed
        device = self.device if meter_id is None else self.meters.get(meter_id, f"{self.device}-{meter_id}")
        fields: Fields = {"w": blink_watts(ms, self.imp_per_kwh, self.ct_ratio), "ms": ms}
        ctx.emit(device, POWER_CHANNEL, fields, ts_ms)
