"""`snmp_pdu`: a rack PDU's per-outlet and total power over SNMP v1, v2c or v3 (pysnmp 7).

The outlet table is read with GETBULK requests that carry every column at once, so a 24-outlet PDU answers in a
round or two. Values the device reports as unsupported (negative, e.g. -1) and noSuchObject/noSuchInstance are
skipped, never stored. A PDU that times out is logged once per outage and counted; the agent's other readers go on.

Each reader polls in its own thread, so a PDU that times out only holds up its own poll. v1 and v2c requests need no
MIBs, no engine and no event loop (`snmp_community`): OIDs are numeric and never resolved. Only SNMPv3 needs
pysnmp's engine (USM, `snmp_usm`, on asyncio), imported when a reader is configured for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyasn1.type.univ import Integer, OctetString
from pysnmp.proto.rfc1905 import EndOfMibView

from edge_agent.readers.base import Fields, Reader, ReaderContext, register
from edge_agent.readers.pdu_profiles import PROFILES, Column, Profile, Scalar
from edge_agent.readers.snmp_community import CommunityClient, PollError, Response
from telemetry.config import Section
from telemetry.series import TOTAL_CHANNEL, bank_channel, outlet_channel, phase_channel

log = logging.getLogger(__name__)

# The ASN.1 bases: SNMPv1 answers in RFC 1155's types (Counter, Gauge), v2c and v3 in RFC 1902's (Counter32, ...).
NUMERIC = Integer
# pysnmp's protocol objects for these live in `snmp_usm`, which only SNMPv3 readers import.
AUTH_PROTOCOLS = ("md5", "sha", "sha224", "sha256", "sha384", "sha512")
PRIV_PROTOCOLS = ("des", "aes", "aes192", "aes256")
MAX_REPETITIONS = 32
NO_SUCH_NAME = 2  # SNMPv1 error-status


@dataclass(frozen=True)
class V3User:
    user: str
    auth_protocol: str | None
    auth_key: str | None
    priv_protocol: str | None
    priv_key: str | None
    context: str


def _parse_v3(sec: Section) -> V3User:
    user = sec.string("user")
    auth_protocol = sec.string("auth_protocol", None, choices=AUTH_PROTOCOLS)
    priv_protocol = sec.string("priv_protocol", None, choices=PRIV_PROTOCOLS)
    auth_key = sec.secret("auth_key", required=auth_protocol is not None)
    priv_key = sec.secret("priv_key", required=priv_protocol is not None)
    if priv_protocol and not auth_protocol:
        raise sec.error("priv_protocol", "SNMPv3 privacy needs auth_protocol too")
    return V3User(user, auth_protocol, auth_key, priv_protocol, priv_key, sec.string("context", ""))


def _custom_profile(sec: Section) -> Profile:
    outlet_oids, total_oids = sec.str_map("outlet_oids"), sec.str_map("total_oids")
    scales: dict[str, Any] = sec.table("scales").data
    for name, value in scales.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise sec.error(f"scales.{name}", "must be a number")
    if "w" not in outlet_oids and "w" not in total_oids:
        raise sec.error("outlet_oids", "custom profile needs a `w` OID in outlet_oids or total_oids")
    return Profile(
        name="custom",
        outlets=tuple(Column(f, oid.strip("."), float(scales.get(f, 1.0))) for f, oid in outlet_oids.items()),
        total=tuple(Scalar(f, oid.strip("."), float(scales.get(f, 1.0))) for f, oid in total_oids.items()),
    )


def _number(value: object, scale: float) -> float | None:
    if not isinstance(value, NUMERIC):
        return None  # noSuchObject, noSuchInstance, endOfMibView, or a type the profile did not expect
    n = int(value)
    return None if n < 0 else round(n * scale, 6)  # negative: the device's "not supported" (-1)


@register("snmp_pdu")
@dataclass
class SnmpPduReader(Reader):
    device: str
    host: str
    profile: Profile
    port: int = 161
    version: str = "2c"
    community: str | None = None
    v3: V3User | None = None
    interval_s: float = 30.0
    timeout_s: float = 2.0
    retries: int = 1
    count: int | None = None
    _down: bool = field(default=False, repr=False)

    @classmethod
    def from_config(cls, sec: Section) -> SnmpPduReader:
        version = sec.string("version", "2c", choices=("1", "2c", "3"))
        known = (*sorted(PROFILES), "custom")
        profile_name = sec.string("profile", choices=known)
        community = v3 = None
        if version == "3":
            v3 = _parse_v3(sec)
        else:
            community = sec.secret("community")
            if community is None:
                raise sec.error("community", f"required for SNMP v{version}")
        return cls(
            device=sec.name("device"),
            host=sec.string("host"),
            profile=_custom_profile(sec) if profile_name == "custom" else PROFILES[profile_name],
            port=sec.integer("port", 161, min_value=1),
            version=version,
            community=community,
            v3=v3,
            interval_s=sec.number("interval_s", 30.0, positive=True),
            timeout_s=sec.number("timeout_s", 2.0, positive=True),
            retries=sec.integer("retries", 1, min_value=0),
            count=sec.integer("count", None, min_value=1),
        )

    def run(self, ctx: ReaderContext) -> None:
        session = SnmpSession(self)
        polls = 0
        try:
            while not ctx.stop.is_set() and (self.count is None or polls < self.count):
                started = time.monotonic()
                self._poll_once(session, ctx)
                polls += 1
                ctx.stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
            if self.count is not None:
                ctx.stop.wait()  # `count` reached: this reader is done, the agent goes on
        finally:
            session.close()

    def _poll_once(self, session: SnmpSession, ctx: ReaderContext) -> None:
        try:
            readings = read_profile(session, self.profile)
        except PollError as exc:
            session.forget_static()
            ctx.counters["snmp_errors"] += 1
            if not self._down:
                log.error("%s: PDU %s:%d: %s (logged once until it answers again)", self.device, self.host,
                          self.port, exc)
                self._down = True
            return
        if self._down:
            log.info("%s: PDU %s:%d answers again", self.device, self.host, self.port)
            self._down = False
        if not readings:
            ctx.counters["snmp_empty_polls"] += 1
        now_ms = ctx.now_ms()
        for channel, fields in readings:
            ctx.emit(self.device, channel, fields, now_ms)


class SnmpSession:
    """A reader's client (made at its first request) and what it walked once; kept between polls."""

    def __init__(self, reader: SnmpPduReader) -> None:
        self.reader = reader
        self._client: Any = None  # CommunityClient, or snmp_usm's UsmClient for SNMPv3
        self._static: dict[str, dict[str, object]] = {}  # configuration columns, walked once per session

    def _open(self) -> Any:
        r = self.reader
        try:
            if r.v3 is None:
                return CommunityClient.open(r.host, r.port, r.community or "", r.version, r.timeout_s, r.retries)
            from edge_agent.readers.snmp_usm import UsmClient  # SNMPv3's engine and MIBs: only for those who use it

            return UsmClient.open(r.host, r.port, r.v3, r.timeout_s, r.retries)
        except OSError as exc:  # a name that does not resolve, an address family the host lacks
            raise PollError(f"cannot open a socket to it: {exc}") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _request(self, kind: str, oids: list[str]) -> list[tuple[object, object]]:
        """A GET, GETNEXT or GETBULK of every OID at once."""
        if self._client is None:
            self._client = self._open()
        response: Response = self._client.request(kind, oids, MAX_REPETITIONS)
        if kind == "next" and response.error_status == NO_SUCH_NAME:
            return [(oids[0], EndOfMibView())]  # SNMPv1's way of saying the walk ran off the end
        if response.error_status:
            raise PollError(f"SNMP error {response.error_name}")
        return list(response.var_binds)

    def _next_rows(self, oids: list[str]) -> list[tuple[object, object]]:
        """The next row of each column: GETBULK, or for SNMPv1, which has none, one GETNEXT per column (so that
        one column at its end cannot fail the request of the others)."""
        if self.reader.version != "1":
            return self._request("bulk", oids)
        return [vb for oid in oids for vb in self._request("next", [oid])]

    def get(self, oids: list[str]) -> list[object]:
        return [value for _, value in self._request("get", oids)]

    def walk_columns(self, columns: list[str]) -> dict[str, dict[str, object]]:
        """Every row of each column: one GETBULK carries all unfinished columns, until each leaves its subtree."""
        rows: dict[str, dict[str, object]] = {c: {} for c in columns}
        cursor = {c: c for c in columns}
        while cursor:
            cols = list(cursor)
            var_binds = self._next_rows([cursor[c] for c in cols])
            finished: set[str] = set()
            progressed: set[str] = set()
            for i, (oid, value) in enumerate(var_binds):
                col = cols[i % len(cols)]
                oid_text = str(oid)
                if col in finished or isinstance(value, EndOfMibView) or not oid_text.startswith(col + "."):
                    finished.add(col)  # past the column's subtree, or the end of the agent's MIB
                    continue
                rows[col][oid_text[len(col) + 1 :]] = value
                cursor[col] = oid_text
                progressed.add(col)
            for col in cols:
                if col in finished or col not in progressed:
                    cursor.pop(col, None)
        return rows

    def walk_static(self, columns: list[str]) -> dict[str, dict[str, object]]:
        """Like `walk_columns`, for columns that do not change between polls (decimal digits): walked once."""
        missing = [c for c in columns if c not in self._static]
        if missing:
            self._static.update(self.walk_columns(missing))
        return {c: self._static[c] for c in columns}

    def forget_static(self) -> None:
        self._static.clear()  # after an outage the PDU may have been reconfigured or replaced


def _index_key(index: str) -> list[int]:
    return [int(p) for p in index.split(".")]


def _row_index(raw: str, suffix: str) -> str | None:
    """The row part of a column's index: `raw` without the column's sensor suffix, or None for other sensors."""
    if not suffix:
        return raw
    return raw[: -len(suffix)] if raw.endswith(suffix) and len(raw) > len(suffix) else None


def read_table(session: SnmpSession, columns: tuple[Column, ...]) -> dict[str, Fields]:
    """`{row index: fields}` of a profile table; columns sharing an OID (one per sensor suffix) are walked once."""
    values = session.walk_columns(sorted({c.oid for c in columns}))
    digit_oids = sorted({c.digits_oid for c in columns if c.digits_oid})
    digits = session.walk_static(digit_oids) if digit_oids else {}
    rows: dict[str, Fields] = {}
    for col in columns:
        for raw, value in values[col.oid].items():
            index = _row_index(raw, col.suffix)
            if index is None:
                continue
            if col.field == "name":
                if isinstance(value, OctetString) and str(value):
                    rows.setdefault(index, {})["name"] = str(value)
                continue
            scale = col.scale
            if col.digits_oid and (d := _number(digits[col.digits_oid].get(raw), 1.0)) is not None:
                scale /= 10 ** int(d)
            if (n := _number(value, scale)) is not None:
                rows.setdefault(index, {})[col.field] = n
    return rows


def _channel(index: str, optional_parts: int, make: Callable[..., str] = outlet_channel) -> str:
    parts = index.split(".")
    while optional_parts and len(parts) > 1 and parts[0] == "1":
        parts, optional_parts = parts[1:], optional_parts - 1
    return make(*parts)


def read_profile(session: SnmpSession, profile: Profile) -> list[tuple[str, Fields]]:
    """`[(channel, fields)]` for every outlet with a power reading, `total`, and every input phase and breaker bank
    with a current reading. The fallback's outlets and total stand in when the profile's answer nothing (an
    AP7902B has rPDU2's phases and banks but reports its power only in the older rPDU tables)."""
    readings = _outlets_and_total(session, profile)
    if not readings and profile.fallback is not None:
        readings = _outlets_and_total(session, profile.fallback)
    for columns, make in ((profile.phases, phase_channel), (profile.banks, bank_channel)):
        if columns:
            table = read_table(session, columns)
            readings += [(_channel(i, profile.optional_index_parts, make), table[i])
                         for i in sorted(table, key=_index_key) if "a" in table[i]]
    return readings


def _outlets_and_total(session: SnmpSession, profile: Profile) -> list[tuple[str, Fields]]:
    readings: list[tuple[str, Fields]] = []
    if profile.outlets:
        table = read_table(session, profile.outlets)
        for index in sorted(table, key=_index_key):
            if "w" in table[index]:
                readings.append((_channel(index, profile.optional_index_parts), table[index]))
    total: Fields = {}
    if profile.total:
        values = session.get([s.oid for s in profile.total])
        for scalar, value in zip(profile.total, values, strict=True):
            if (n := _number(value, scalar.scale)) is not None:
                total[scalar.field] = n
    elif profile.total_rows:
        for row in read_table(session, profile.total_rows).values():
            for name, value in row.items():
                total[name] = round(float(total.get(name, 0.0)) + float(value), 6)
    elif profile.total_is_sum_of_outlets and readings:
        total["w"] = sum(float(f["w"]) for _, f in readings)
    if "w" in total:
        readings.append((TOTAL_CHANNEL, total))
    return readings
