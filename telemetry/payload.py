"""The data payload, SPEC.md section 2: one JSON object per point, or a JSON array of them.

The decoder is strict about what SPEC fixes (types of `ts`, `seq` and the known values) and lenient about the rest:
unknown scalar fields are kept as extras, because other publishers may add their own.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from telemetry.errors import PowerhubError
from telemetry.names import SeriesKey

MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
MAX_POINTS_PER_PAYLOAD = 50_000
# Unix ms between 2001-09-09 and 2255-03-14: outside is a unit mistake (seconds, microseconds), not a time.
# The upper bound also keeps every time inside InfluxDB's int64 nanoseconds.
MIN_TS_MS = 1_000_000_000_000
MAX_TS_MS = 9_000_000_000_000
END_TS_MS = MAX_TS_MS + 1  # the exclusive end of "every time": ranges that have no upper bound
MAX_INT = 2**63 - 1  # `seq` and `ms` are stored as int64 (InfluxDB, SQLite): past it a store refuses the batch
MAX_FLOAT_INT = int(sys.float_info.max)  # other numbers are stored as floats: a larger int raises OverflowError

FLOAT_FIELDS = ("w", "a", "wh", "min_w", "max_w", "avg_w", "value", "va", "pf", "v", "limit_a", "warn_a")
INT_FIELDS = ("ms",)
STR_FIELDS = ("machine",)
_FLOAT_SET = frozenset(FLOAT_FIELDS)
RESERVED = frozenset(("ts", "seq", "time", "site", "device", "channel", "id"))
EXTRA_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

Value = float | int | str | bool


class PayloadError(PowerhubError, ValueError):
    """A payload the hub must drop. `reason` is a short, stable label used as the metrics' `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Point:
    """One reading of one series. `fields` holds the values (`w`, `ms`, `value`, ...), never `ts` or `seq`.

    Treat it as immutable: nothing changes a point once made. It is not `frozen` because a frozen dataclass costs
    three times as much to make (0.6 µs instead of 0.2), and the hub makes one per point it receives."""

    key: SeriesKey
    ts_ms: int
    seq: int
    fields: dict[str, Value] = field(default_factory=dict)

    def field_number(self, name: str) -> float | None:
        """A field's value when it is a number (a bool is not), else None."""
        v = self.fields.get(name)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    @property
    def watts(self) -> float | None:
        return self.field_number("w")

    @property
    def number(self) -> float | None:
        """The series' main value: watts for power series, `value` for load and energy, amps for current."""
        return self.field_number(self.key.main_field)

    def to_wire(self) -> dict[str, Value]:
        return {"ts": self.ts_ms, "seq": self.seq, **self.fields}


def encode_points(points: Iterable[Point]) -> bytes:
    """One point as an object, several (all of one series) as an array."""
    wire = [p.to_wire() for p in points]
    body: object = wire[0] if len(wire) == 1 else wire
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    """A finite float, or an int a float can hold (numbers other than `seq` and `ms` are stored as floats)."""
    if _is_int(v):
        if not -MAX_FLOAT_INT <= v <= MAX_FLOAT_INT:  # type: ignore[operator]
            raise PayloadError("range", "an integer too large for a float")
        return True
    return isinstance(v, float) and math.isfinite(v)


def _int64(name: str, v: int) -> int:
    if v > MAX_INT:
        raise PayloadError("range", f"field {name!r} does not fit in 64 bits")
    return v


def _text(name: str, v: str) -> str:
    """A string the stores can encode: JSON's \\ud800 escapes decode to lone surrogates, which UTF-8 cannot hold."""
    if not v.isascii():
        try:
            v.encode()
        except UnicodeEncodeError:
            raise PayloadError("type", f"field {name!r} is not valid Unicode (a lone surrogate)") from None
    return v


def _decode_one(key: SeriesKey, main: str, obj: object) -> Point:
    """One point of series `key`, whose value is field `main` (passed in: asked once per payload, not per point)."""
    if type(obj) is not dict:
        raise PayloadError("type", f"a point must be a JSON object, not {type(obj).__name__}")
    ts, seq = obj.get("ts"), obj.get("seq")
    # The common case first, without calls: the hub decodes every point, so this is a large part of its time.
    if type(ts) is not int or type(seq) is not int or not MIN_TS_MS <= ts <= MAX_TS_MS or not 0 <= seq <= MAX_INT:
        _check_stamps(obj)
    if len(obj) == 3:  # most points: ts, seq and the value, a finite float (main is a float field)
        v = obj.get(main)
        if type(v) is float and v - v == 0.0:
            return Point(key, ts, seq, {main: v})  # type: ignore[arg-type]
    fields: dict[str, Value] = {}
    for name, v in obj.items():
        if type(v) is float and name in _FLOAT_SET and v - v == 0.0:  # a known float field, finite (inf - inf: nan)
            fields[name] = v
        elif name != "ts" and name != "seq" and (value := _check_field(name, v)) is not None:
            fields[name] = value
    if main not in fields:
        raise PayloadError("missing", f"field {main!r} is required for {key.measurement} series")
    return Point(key, ts, seq, fields)  # type: ignore[arg-type]


def _check_stamps(obj: dict[str, object]) -> None:
    """Raise the PayloadError that `ts` or `seq` deserves."""
    for name in ("ts", "seq"):
        if name not in obj:
            raise PayloadError("missing", f"field {name!r} is required")
        if not _is_int(obj[name]):
            raise PayloadError("type", f"field {name!r} must be an integer")
    ts, seq = obj["ts"], obj["seq"]
    if not MIN_TS_MS <= ts <= MAX_TS_MS:  # type: ignore[operator]
        raise PayloadError("range", f"ts {ts} is not Unix milliseconds")
    raise PayloadError("range", f"seq {seq} is not between 0 and {MAX_INT}")


def _check_field(name: str, v: object) -> Value | None:
    """The field's stored value; None for an extra that cannot be stored under its name (it is skipped)."""
    if name in FLOAT_FIELDS:
        if not _is_number(v):
            raise PayloadError("type", f"field {name!r} must be a finite number")
        return float(v)  # type: ignore[arg-type]
    if name in INT_FIELDS:
        if not _is_int(v) or v <= 0:  # type: ignore[operator]
            raise PayloadError("type", f"field {name!r} must be a positive integer")
        return _int64(name, v)  # type: ignore[arg-type]
    if name in STR_FIELDS:
        if not isinstance(v, str):
            raise PayloadError("type", f"field {name!r} must be a string")
        return _text(name, v)
    if not EXTRA_NAME_RE.fullmatch(name) or name in RESERVED:
        return None
    # Extras: numbers are stored as floats so that one publisher's 1 and another's 1.5 never conflict in InfluxDB.
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        return _text(name, v)
    if _is_number(v):
        return float(v)  # type: ignore[arg-type]
    return json.dumps(v, separators=(",", ":"))


def parse_json(payload: bytes) -> object:
    """A message's JSON; ValueError for anything that is not JSON, nested too deep included (Python's parser raises
    RecursionError there, which would end the paho thread that called it)."""
    try:
        return json.loads(payload)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError among them
        raise ValueError(str(exc)) from None
    except RecursionError:
        raise ValueError("nested too deep") from None


def decode_payload(key: SeriesKey, payload: bytes, loads: Callable[[bytes], object] = parse_json) -> list[Point]:
    """Decode a data message for series `key`; raise PayloadError with a short reason when it must be dropped.
    `loads` parses the JSON (the hub's is faster); it raises ValueError for what is not JSON."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError("oversized", f"{len(payload)} bytes, more than {MAX_PAYLOAD_BYTES}")
    try:
        body = loads(payload)
    except ValueError as exc:
        raise PayloadError("json", f"not valid JSON ({exc})") from None
    if isinstance(body, list):
        if not body:
            raise PayloadError("type", "empty array")
        if len(body) > MAX_POINTS_PER_PAYLOAD:
            raise PayloadError("oversized", f"{len(body)} points, more than {MAX_POINTS_PER_PAYLOAD}")
        main = key.main_field
        return [_decode_one(key, main, obj) for obj in body]
    return [_decode_one(key, key.main_field, body)]
