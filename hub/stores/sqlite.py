"""The embedded store: one SQLite file in WAL mode, so the hub writes while the web app reads.

`w`, `ms` and `value` get columns (they are aggregated); every other field lives in a JSON column.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hub.stores.base import Bucket, SeriesInfo, Store, StoreUnavailable, register
from telemetry import Point, SeriesKey, parse_series_id
from telemetry.series import MEASUREMENTS
from telemetry.timeunits import HOUR_MS

SCHEMA = """
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS points (
    series INTEGER NOT NULL, ts INTEGER NOT NULL, seq INTEGER NOT NULL,
    w REAL, ms INTEGER, value REAL, extra TEXT,
    PRIMARY KEY (series, ts)
) WITHOUT ROWID;
"""
COLUMNS = ("w", "ms", "value")


def _row_to_point(key: SeriesKey, ts: int, seq: int, w: object, ms: object, value: object, extra: str | None) -> Point:
    fields = {name: v for name, v in zip(COLUMNS, (w, ms, value), strict=True) if v is not None}
    if extra:
        fields.update(json.loads(extra))
    return Point(key, ts, seq, fields)  # type: ignore[arg-type]


class SqliteStore(Store):
    def __init__(self, path: str) -> None:
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._ids: dict[str, int] = {}
        self._write_lock = threading.Lock()
        with self._db() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from None
        return db

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection: one per concurrent caller, reused, since a web server may use a thread per request."""
        try:
            db = self._idle.get_nowait()
        except queue.Empty:
            db = self._connect()
        try:
            yield db
        finally:
            self._idle.put(db)

    def _series_id(self, db: sqlite3.Connection, sid: str, create: bool) -> int | None:
        if sid not in self._ids:
            if create:
                db.execute("INSERT OR IGNORE INTO series (sid) VALUES (?)", (sid,))
            row = db.execute("SELECT id FROM series WHERE sid = ?", (sid,)).fetchone()
            if row is None:
                return None
            self._ids[sid] = row[0]
        return self._ids[sid]

    def write(self, points: Sequence[Point]) -> None:
        with self._write_lock, self._db() as db:
            try:
                db.execute("BEGIN IMMEDIATE")
                rows = []
                for p in points:
                    extra = {k: v for k, v in p.fields.items() if k not in COLUMNS}
                    f = p.fields
                    rows.append((self._series_id(db, p.key.id, True), p.ts_ms, p.seq, f.get("w"), f.get("ms"),
                                 f.get("value"), json.dumps(extra) if extra else None))
                db.executemany("INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                self._ids.clear()
                raise StoreUnavailable(f"sqlite write: {exc}") from None

    def series(self) -> list[SeriesInfo]:
        # One query: each series' newest row is one seek in the (series, ts) key. A query per series cost 5 s at
        # 10,000 series (issue 25).
        with self._db() as db:
            rows = db.execute(
                "SELECT s.sid, p.ts, p.seq, p.w, p.ms, p.value, p.extra FROM series s LEFT JOIN points p "
                "ON p.series = s.id AND p.ts = (SELECT max(ts) FROM points WHERE series = s.id) ORDER BY s.sid"
            ).fetchall()
        out = []
        for sid, *row in rows:
            key = parse_series_id(sid)
            if MEASUREMENTS[key.measurement].listed:
                out.append(SeriesInfo(key, _row_to_point(key, *row) if row[0] is not None else None))
        return out

    def series_keys(self) -> list[SeriesKey]:
        with self._db() as db:
            keys = [parse_series_id(sid) for (sid,) in db.execute("SELECT sid FROM series ORDER BY sid")]
        return [k for k in keys if MEASUREMENTS[k.measurement].listed]

    def points(self, key: SeriesKey, from_ms: int, to_ms: int, limit: int, newest: bool = False) -> list[Point]:
        order = "DESC" if newest else "ASC"
        with self._db() as db:
            sid = self._series_id(db, key.id, False)
            if sid is None:
                return []
            rows = db.execute(
                f"SELECT ts, seq, w, ms, value, extra FROM points WHERE series = ? AND ts >= ? AND ts < ? "
                f"ORDER BY ts {order} LIMIT ?",
                (sid, from_ms, to_ms, limit),
            ).fetchall()
        if newest:
            rows.reverse()
        return [_row_to_point(key, *row) for row in rows]

    def _grouped(self, key: SeriesKey, aggregates: str, from_ms: int, to_ms: int, step_ms: int, origin_ms: int,
                 where: str = "") -> list[tuple[Any, ...]]:
        """`(bucket number, *aggregates)` rows of the series' points in range, buckets `origin + k*step`."""
        with self._db() as db:
            sid = self._series_id(db, key.id, False)
            if sid is None:
                return []
            return db.execute(
                # Floor division also for points before the origin (SQLite's `/` truncates toward zero).
                f"SELECT CASE WHEN ts >= :o THEN (ts - :o) / :s ELSE (ts - :o - :s + 1) / :s END AS b, {aggregates} "
                f"FROM points WHERE series = :id AND ts >= :f AND ts < :t {where} GROUP BY b ORDER BY b",
                {"o": origin_ms, "s": step_ms, "id": sid, "f": from_ms, "t": to_ms},
            ).fetchall()

    def buckets(self, key: SeriesKey, from_ms: int, to_ms: int, step_ms: int, origin_ms: int = 0) -> list[Bucket]:
        main = key.main_field
        rows = self._grouped(key, f"count({main}), avg({main}), min({main}), max({main}), sum(ms), min(ms), max(ms), "
                                  "sum(w * ms)", from_ms, to_ms, step_ms, origin_ms, f"AND {main} IS NOT NULL")
        return [
            Bucket(origin_ms + b * step_ms, n, mean, lo, hi, sum_ms, min_ms, max_ms,
                   None if e is None else e / HOUR_MS)
            for b, n, mean, lo, hi, sum_ms, min_ms, max_ms, e in rows
        ]

    def rollup_buckets(self, key: SeriesKey, from_ms: int, to_ms: int, step_ms: int,
                       origin_ms: int = 0) -> list[Bucket]:
        fields = ("sum", "n"), ("sum", "sum_w"), ("min", "min_w"), ("max", "max_w"), ("sum", "sum_ms"), \
            ("min", "min_ms"), ("max", "max_ms"), ("sum", "blink_wh")
        aggregates = ", ".join(f"{fn}(json_extract(extra, '$.{name}'))" for fn, name in fields)
        rows = self._grouped(key, aggregates, from_ms, to_ms, step_ms, origin_ms)
        return [Bucket(origin_ms + b * step_ms, int(n), sw / n, lo, hi, None if sms is None else int(sms), mn, mx, e)
                for b, n, sw, lo, hi, sms, mn, mx, e in rows if n and None not in (sw, lo, hi)]  # as influx.py

    def ping(self) -> None:
        try:
            with self._db() as db:
                db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from None


    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()


@register("sqlite")
def _open(url: str, _token: str | None, create: bool) -> Store:
    parts = urlsplit(url)
    path = parts.netloc + parts.path  # sqlite:///abs/path, or sqlite://relative/path
    if not path:
        raise ValueError(f"store url {url!r} names no file: use sqlite:///path/to/points.sqlite")
    if not create and not Path(path).exists():
        raise StoreUnavailable(f"sqlite {path}: no such file (has a hub stored anything there yet?)")
    return SqliteStore(path)
