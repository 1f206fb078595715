"""InfluxDB through the v1 HTTP API (`/write` line protocol, `/query` InfluxQL), which 1.x, 2.x and 3.x all accept.

Lines are serialized by influxdb-client's `Point` (its escaping, not ours). Watts are always floats and `ms`/`seq`
always integers, so no two writers can make a field type conflict.

`to_lines`, the writer's path, asks `Point` only for the parts that repeat (each series' `measurement,tags` head,
each field name, each string value) and joins them with numbers formatted as `Point` formats them: a `Point` per
point cost 11 µs, more than everything else the hub does with a point. Tests check it against `to_line` (one
`Point` per point) for random points.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import KeysView, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from influxdb_client import Point as LinePoint
from influxdb_client import WritePrecision

from hub.stores.base import Bucket, SeriesInfo, Store, StoreRejected, StoreUnavailable, register
from telemetry import Point, SeriesKey
from telemetry.names import NameError_
from telemetry.payload import FLOAT_FIELDS, MAX_TS_MS
from telemetry.series import LISTED
from telemetry.timeunits import HOUR_MS, MINUTE_MS, now_ms

log = logging.getLogger(__name__)

TAGS = ("site", "device", "channel")
INT_FIELDS = ("ms", "seq")
TIMEOUT_S = 30.0
LATEST_FULL_MS = 5 * MINUTE_MS  # how often series() asks for every series' newest point, not only recent ones
LATEST_MARGIN_MS = MINUTE_MS  # points stamped this long before the last call may have been stored since
_LISTED = ", ".join(f'"{m}"' for m in LISTED)  # the measurements series() lists; names of our own, nothing to escape


def to_line(p: Point) -> str:
    lp = LinePoint(p.key.measurement).tag("site", p.key.site).tag("device", p.key.device)
    lp = lp.tag("channel", p.key.channel).field("seq", int(p.seq)).time(p.ts_ms, WritePrecision.MS)
    for name, value in p.fields.items():
        if name in INT_FIELDS:
            value = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # every other number is a float field, whoever wrote it: no type conflicts
        lp = lp.field(name, value)
    return str(lp.to_line_protocol(precision=WritePrecision.MS))


@functools.lru_cache(maxsize=65_536)
def _head(key: SeriesKey) -> str:
    """`measurement,site=..,device=..,channel=.. ` as Point writes it (the text before a point's first field)."""
    line = str(LinePoint(key.measurement).tag("site", key.site).tag("device", key.device)
               .tag("channel", key.channel).field("seq", 0).to_line_protocol())
    return line[: -len("seq=0i")]


@functools.lru_cache(maxsize=4096)
def _field_key(name: str) -> str:
    return str(LinePoint("m").field(name, True).to_line_protocol())[2 : -len("=true")]


@functools.lru_cache(maxsize=65_536)
def _string_field(name: str, value: str) -> str:
    return str(LinePoint("m").field(name, value).to_line_protocol())[2:]  # machine names: few, repeated


def _number(value: float) -> str:
    s = str(value)  # Point's float format: str(), less a trailing ".0"
    return s[:-2] if s.endswith(".0") else s


def _field(name: str, value: object) -> str | None:
    if name in INT_FIELDS:
        return f"{_field_key(name)}={int(value)}i"  # type: ignore[call-overload]
    if isinstance(value, bool):
        return f"{_field_key(name)}={'true' if value else 'false'}"
    if isinstance(value, int | float):
        value = float(value)
        return f"{_field_key(name)}={_number(value)}" if math.isfinite(value) else None  # Point drops those too
    return _string_field(name, str(value))


@functools.lru_cache(maxsize=4096)
def _order(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """A point's field names with `seq`, in Point's order (sorted), each with its key as Point writes it."""
    return tuple((name, _field_key(name)) for name in sorted((*names, "seq")))


@functools.lru_cache(maxsize=65_536)
def _one_float(key: SeriesKey, name: str) -> tuple[str, str, bool]:
    """For points whose only field is the float `name`: the text before and between a line's value and seq, and
    whether the value comes first (Point sorts fields: `a` before `seq`, `w` after)."""
    field_key, head = _field_key(name), _head(key)
    if name < "seq":
        return f"{head}{field_key}=", ",seq=", True
    return f"{head}seq=", f"i,{field_key}=", False


def to_lines(points: Sequence[Point]) -> str:
    """The points' lines, as `to_line` writes each. A series' head and a field order are looked up when they change
    from the point before: a payload's points share both. Points with one float field (most readings: `w` alone, or
    `value`) take a shorter path, 0.8 µs a line instead of 1.2."""
    lines: list[str] = []
    append = lines.append
    last_key: SeriesKey | None = None
    last_names: KeysView[str] | None = None
    head, order, single = "", _order(()), ""
    before, between, value_first = "", "", False
    for p in points:
        fields = p.fields
        if p.key is not last_key or fields.keys() != last_names:  # compared as sets: the order is Point's anyway
            last_key, last_names, names = p.key, fields.keys(), tuple(fields)
            head, order = _head(p.key), _order(names)
            single = names[0] if len(names) == 1 and names[0] not in INT_FIELDS else ""
            if single:
                before, between, value_first = _one_float(p.key, single)
        if single:
            value = fields[single]
            if type(value) is float and value - value == 0.0:
                number = str(value)  # `_number` inline (a call costs 0.06 µs a line here)
                if number[-2:] == ".0":
                    number = number[:-2]
                # seq and ts_ms are ints here (the decoder checks them; formulas' points have several fields)
                if value_first:
                    append(f"{before}{number}{between}{p.seq}i {p.ts_ms}")
                else:
                    append(f"{before}{p.seq}{between}{number} {p.ts_ms}")
                continue
        parts = []
        for name, key in order:
            if name == "seq":
                parts.append(f"seq={int(p.seq)}i")
                continue
            value = fields[name]
            if type(value) is float and name not in INT_FIELDS and value - value == 0.0:  # finite: the common case
                parts.append(f"{key}={_number(value)}")
            elif (part := _field(name, value)) is not None:
                parts.append(part)
        append(f"{head}{','.join(parts)} {int(p.ts_ms)}")
    return "\n".join(lines)


def _clamp(ms: int) -> int:
    """Keep a time inside what InfluxDB can hold (int64 ns); no point is stored outside it anyway."""
    return max(0, min(int(ms), MAX_TS_MS + 1))


def _group_by(step_ms: int, origin_ms: int) -> str:
    return f"GROUP BY time({int(step_ms)}ms, {int(origin_ms) % int(step_ms)}ms) fill(none)"


def _time(from_ms: int, to_ms: int) -> str:
    return f"time >= {_clamp(from_ms)}ms AND time < {_clamp(to_ms)}ms"


def _tags(key: SeriesKey) -> str:
    # Names are checked against [a-z0-9_-] by SeriesKey, so they cannot break out of the quotes.
    return f"site = '{key.site}' AND device = '{key.device}' AND channel = '{key.channel}'"


def _where(key: SeriesKey, from_ms: int, to_ms: int) -> str:
    return f"{_tags(key)} AND {_time(from_ms, to_ms)}"


class InfluxStore(Store):
    def __init__(self, base_url: str, database: str, user: str | None, password: str | None, token: str | None):
        self.base_url = base_url.rstrip("/")
        self.database = database
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Token {token}"
        elif user is not None:
            self.http.auth = (user, password or "")
        else:
            self.http.auth = requests.utils.get_netrc_auth(self.base_url)
        # requests reads ~/.netrc and the proxy and CA bundle variables again on every request (7% of the hub's time
        # at 100,000 points/s): they are read once, above and here.
        env = self.http.merge_environment_settings(self.base_url, {}, None, None, None)
        self.http.proxies.update(env["proxies"])
        self.http.verify = env["verify"]
        self.http.trust_env = False
        self._db_checked = False
        self._latest_lock = threading.Lock()
        self._latest: dict[SeriesKey, Point] = {}
        self._latest_full_at: int | None = None
        self._latest_asked_at = 0

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            resp = self.http.request(method, self.base_url + path, timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            raise StoreUnavailable(f"InfluxDB at {self.base_url}: {exc.__class__.__name__}") from None
        if resp.status_code in (401, 403) or resp.status_code >= 500:
            raise StoreUnavailable(f"InfluxDB {path}: HTTP {resp.status_code} {resp.text[:200]}")
        return resp

    def _ensure_database(self) -> None:
        """Create the database on first use (1.x); 2.x/3.x map it to a bucket and may refuse: that is fine."""
        if not self._db_checked:
            resp = self._request("POST", "/query", params={"q": f'CREATE DATABASE "{self.database}"'})
            if resp.status_code != 200:
                log.info("CREATE DATABASE %s answered HTTP %d; assuming it exists", self.database, resp.status_code)
            self._db_checked = True

    def query(self, q: str) -> list[dict[str, Any]]:
        """Run InfluxQL; return its series (each with name, tags, columns, values)."""
        self._ensure_database()
        resp = self._request("GET", "/query", params={"db": self.database, "q": q, "epoch": "ms"})
        body = resp.json() if resp.content else {}
        if resp.status_code != 200 or "error" in body:
            raise StoreUnavailable(f"InfluxQL failed: {body.get('error', resp.status_code)}")
        result = body.get("results", [{}])[0]
        if "error" in result:
            raise StoreUnavailable(f"InfluxQL failed: {result['error']}")
        return list(result.get("series", []))

    def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        self._ensure_database()
        body = to_lines(points).encode()
        resp = self._request("POST", "/write", params={"db": self.database, "precision": "ms"}, data=body)
        if resp.status_code == 404:
            self._db_checked = False
            raise StoreUnavailable(f"InfluxDB /write: database {self.database!r} not found")
        if resp.status_code >= 400:
            raise StoreRejected(f"InfluxDB /write: HTTP {resp.status_code} {resp.text[:300]}")

    def series(self) -> list[SeriesInfo]:
        """The newest point of every series, kept between calls, since a scan of every series' newest point took
        6.8 s at 10,000 series: the whole database is asked once every LATEST_FULL_MS; in between, the index for
        series not seen before (their newest point is then asked for alone) and the data only for points stamped
        since the last call, less a margin. The price: a known series whose newest points arrive stamped before that
        (an agent's backlog after an outage) shows them after at most LATEST_FULL_MS."""
        with self._latest_lock:
            asked_at = now_ms()
            if self._latest_full_at is None or asked_at - self._latest_full_at >= LATEST_FULL_MS:
                self._latest, self._latest_full_at = self._newest(), asked_at
            else:
                found = self._newest(f"time >= {_clamp(self._latest_asked_at - LATEST_MARGIN_MS)}ms")
                new = [k for k in self._series_keys() if k not in self._latest and k not in found]
                for i in range(0, len(new), 100):
                    found.update(self._newest(" OR ".join(f"({_tags(k)})" for k in new[i:i + 100])))
                for key, p in found.items():
                    if key not in self._latest or p.ts_ms >= self._latest[key].ts_ms:
                        self._latest[key] = p
            self._latest_asked_at = asked_at
            return [SeriesInfo(key, self._latest[key]) for key in sorted(self._latest, key=lambda k: k.id)]

    def _newest(self, condition: str = "") -> dict[SeriesKey, Point]:
        where = f"WHERE {condition} " if condition else ""
        out = {}
        for s in self.query(f"SELECT * FROM {_LISTED} {where}GROUP BY * ORDER BY time DESC LIMIT 1"):
            try:
                key = SeriesKey(*(s["tags"][t] for t in TAGS))
            except (KeyError, NameError_):
                continue
            out[key] = self._rows(key, s)[0]
        return out

    def series_keys(self) -> list[SeriesKey]:
        return sorted(self._series_keys(), key=lambda k: k.id)

    def _series_keys(self) -> list[SeriesKey]:
        """The listed series the index holds, data unread (`SHOW SERIES`: key strings like `power,channel=..`)."""
        keys = []
        for s in self.query(f"SHOW SERIES FROM {_LISTED}"):
            for (series_key,) in s["values"]:
                tags = dict(part.split("=", 1) for part in series_key.split(",")[1:])
                try:
                    keys.append(SeriesKey(*(tags[t] for t in TAGS)))
                except (KeyError, NameError_):
                    continue
        return keys

    def _rows(self, key: SeriesKey, s: dict[str, Any]) -> list[Point]:
        cols = s["columns"]
        out = []
        for row in s["values"]:
            rec = dict(zip(cols, row, strict=True))
            ts, seq = int(rec.pop("time")), rec.pop("seq", 0)
            fields = {k: float(v) if k in FLOAT_FIELDS else v
                      for k, v in rec.items() if v is not None and k not in TAGS}
            out.append(Point(key, ts, int(seq or 0), fields))
        return out

    def points(self, key: SeriesKey, from_ms: int, to_ms: int, limit: int, newest: bool = False) -> list[Point]:
        order = "DESC" if newest else "ASC"
        q = f'SELECT * FROM "{key.measurement}" WHERE {_where(key, from_ms, to_ms)} ORDER BY time {order} LIMIT {limit}'
        series = self.query(q)
        rows = self._rows(key, series[0]) if series else []
        return rows[::-1] if newest else rows

    def buckets(self, key: SeriesKey, from_ms: int, to_ms: int, step_ms: int, origin_ms: int = 0) -> list[Bucket]:
        main = key.main_field
        group = _group_by(step_ms, origin_ms)
        where = _where(key, from_ms, to_ms)
        series = self.query(f'SELECT count({main}), mean({main}), min({main}), max({main}), sum(ms), min(ms), '
                            f'max(ms) FROM "{key.measurement}" WHERE {where} {group}')
        if not series:
            return []
        rows = [r for r in series[0]["values"] if r[1]]
        energy: dict[int, float] = {}
        if any(r[5] is not None for r in rows):
            # Blink meters: the exact energy sum(w * ms) needs a subquery, several times slower than the plain
            # aggregates, so it is asked only of series that have `ms`.
            sub = self.query(f"SELECT sum(e) FROM (SELECT {main} * ms AS e FROM \"{key.measurement}\" WHERE {where}) "
                             f"WHERE {_time(from_ms, to_ms)} {group}")
            energy = {int(t): e / HOUR_MS for t, e in sub[0]["values"] if e is not None} if sub else {}
        return [Bucket(int(t), int(n), mean, lo, hi, None if sum_ms is None else int(sum_ms), min_ms, max_ms,
                       energy.get(int(t))) for t, n, mean, lo, hi, sum_ms, min_ms, max_ms in rows]

    def rollup_buckets(self, key: SeriesKey, from_ms: int, to_ms: int, step_ms: int,
                       origin_ms: int = 0) -> list[Bucket]:
        series = self.query(
            f'SELECT sum(n), sum(sum_w), min(min_w), max(max_w), sum(sum_ms), min(min_ms), max(max_ms), '
            f'sum(blink_wh) FROM "rollup" WHERE {_where(key, from_ms, to_ms)} '
            f"{_group_by(step_ms, origin_ms)}")
        if not series:
            return []
        # A row with `n` but no sum_w, min_w or max_w is one InfluxDB has taken only in part (it stores each field
        # apart, and a query racing the write can see some before the others): left out, as a bucket not written
        # yet would be.
        return [Bucket(int(t), int(n), sw / n, lo, hi, None if sms is None else int(sms), mn, mx, e)
                for t, n, sw, lo, hi, sms, mn, mx, e in series[0]["values"] if n and None not in (sw, lo, hi)]

    def close(self) -> None:
        self.http.close()

    def ping(self) -> None:
        resp = self._request("GET", "/ping")
        if resp.status_code != 204:
            raise StoreUnavailable(f"InfluxDB /ping: HTTP {resp.status_code}")


@register("influxdb", "influxdbs")
def _open(url: str, token: str | None, _create: bool) -> Store:
    parts = urlsplit(url)
    database = parts.path.strip("/")
    if not parts.hostname or not database:
        raise ValueError(f"store url {url!r} must be influxdb://[user:password@]host:port/database")
    scheme = "https" if parts.scheme == "influxdbs" else "http"
    base = f"{scheme}://{parts.hostname}:{parts.port or 8086}"
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return InfluxStore(base, database, user, password, token)
