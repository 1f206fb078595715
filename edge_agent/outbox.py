"""The on-disk outbox: every reading is here from the moment it is taken until the broker acknowledged it.

SQLite in WAL mode: a SIGKILL loses nothing that `put` returned for. `seq` is the row's AUTOINCREMENT id, so it
increases by one per point and is never reused, across restarts too. The last `ts` per series is kept as well, so a
restarted agent whose clock went back cannot stamp a point on top of one it already sent.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from telemetry import Point, parse_series_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, series TEXT NOT NULL,
                                   ts INTEGER NOT NULL, fields TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS last_ts (series TEXT PRIMARY KEY, ts INTEGER NOT NULL) WITHOUT ROWID;
"""


class Outbox:
    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.last_ts: dict[str, int] = dict(self._db.execute("SELECT series, ts FROM last_ts").fetchall())

    def put(self, point: Point) -> Point:
        """Store a point (its `seq` is assigned here) and return it with that seq."""
        sid = point.key.id
        with self._lock:
            self._db.execute("BEGIN")
            try:
                cur = self._db.execute(
                    "INSERT INTO outbox (series, ts, fields) VALUES (?, ?, ?)",
                    (sid, point.ts_ms, json.dumps(point.fields)),
                )
                self._db.execute("INSERT OR REPLACE INTO last_ts VALUES (?, ?)", (sid, point.ts_ms))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.last_ts[sid] = point.ts_ms
        assert cur.lastrowid is not None
        return Point(point.key, point.ts_ms, cur.lastrowid, point.fields)

    def peek(self, limit: int, after_seq: int = 0) -> list[Point]:
        """The oldest `limit` points with seq > after_seq, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, series, ts, fields FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
        return [Point(parse_series_id(sid), ts, seq, json.loads(fields)) for seq, sid, ts, fields in rows]

    def ack(self, seqs: list[int]) -> None:
        """Delete acknowledged points: only the broker's PUBACK may call this."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
