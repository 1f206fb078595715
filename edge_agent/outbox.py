"""The on-disk outbox: every reading is here from the moment it is taken until the broker acknowledged it.

SQLite in WAL mode: a SIGKILL loses nothing that `put` returned for. `seq` is the row's AUTOINCREMENT id, so it
increases by one per point and is never reused, across restarts too. The last `ts` per series is kept as well, so a
restarted agent whose clock went back cannot stamp a point on top of one it already sent.

The file has a size limit (`agent.outbox_max_mb`, SQLite's `max_page_count`). A full outbox, or a full disk, refuses
new points with `OutboxFull`: what it holds is kept and delivered, newer readings are lost and counted. Keeping the
oldest is deliberate: they are the ones no other copy of exists, and a gap at the end is plain to see.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from telemetry import Point, parse_series_id
from telemetry.errors import PowerhubError

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, series TEXT NOT NULL,
                                   ts INTEGER NOT NULL, fields TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS last_ts (series TEXT PRIMARY KEY, ts INTEGER NOT NULL) WITHOUT ROWID;
"""


DEFAULT_MAX_MB = 1024
CACHE_KB = 512
# Each point as the data payload carries it (SPEC.md section 2), `{"ts":…,"seq":…,<fields>}`, spliced by SQLite from
# the stored row: a backlog is sent without decoding and encoding every point in Python (which was half the agent's
# time per point). `fields` is a JSON object; an empty one still makes a valid object.
WIRE_SQL = """SELECT seq, series, '{"ts":' || ts || ',"seq":' || seq ||
                     CASE WHEN fields = '{}' THEN '}' ELSE ',' || substr(fields, 2) END
              FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?"""
WireRow = tuple[int, str, str]  # seq, series id, the point's JSON object


class OutboxFull(PowerhubError, RuntimeError):
    """The outbox reached its size limit, or the disk is full: the point was not stored."""


def _full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _runs(seqs: list[int]) -> list[tuple[int, int]]:
    """`seqs` as runs of consecutive numbers, (first, last) each: a message's points are usually one run."""
    ordered = sorted(seqs)
    if ordered and ordered[-1] - ordered[0] == len(ordered) - 1:
        return [(ordered[0], ordered[-1])]  # one run, as a message's points are: no loop over them
    runs: list[tuple[int, int]] = []
    for seq in ordered:
        if runs and seq <= runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], max(seq, runs[-1][1]))
        else:
            runs.append((seq, seq))
    return runs


class Outbox:
    def __init__(self, path: str | Path, max_mb: float = DEFAULT_MAX_MB) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A generous busy timeout: after a crash the first opener recovers the WAL, and others wait for it.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # SQLite's page cache (2 MB by default) fills as an outage fills the outbox: the agent's RSS would grow by it.
        # Its pages are read in order, once, and the kernel's page cache has them too.
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KB}")
        page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._db.execute(f"PRAGMA max_page_count={max(16, int(max_mb * 1024 * 1024 / page_size))}")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.last_ts: dict[str, int] = dict(self._db.execute("SELECT series, ts FROM last_ts").fetchall())

    def put(self, point: Point) -> Point:
        """Store a point (its `seq` is assigned here) and return it with that seq."""
        sid = point.key.id
        with self._transaction() as db:
            cur = db.execute("INSERT INTO outbox (series, ts, fields) VALUES (?, ?, ?)",
                             (sid, point.ts_ms, json.dumps(point.fields, separators=(",", ":"), allow_nan=False)))
            db.execute("INSERT OR REPLACE INTO last_ts VALUES (?, ?)", (sid, point.ts_ms))
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

    def peek_wire(self, limit: int, after_seq: int = 0) -> list[WireRow]:
        """As `peek`, each point already in its wire form."""
        with self._lock:
            return self._db.execute(WIRE_SQL, (after_seq, limit)).fetchall()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN .. COMMIT under the lock, rolled back on any error; a full outbox or disk is `OutboxFull`."""
        with self._lock:
            try:
                self._db.execute("BEGIN")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error) and _full(exc):
                    raise OutboxFull(str(exc)) from None
                raise

    def ack(self, seqs: list[int]) -> None:
        """Delete acknowledged points: only the broker's PUBACK may call this. On a full disk even a delete can
        fail (it writes to the WAL first): `OutboxFull`, and the caller tries again later."""
        with self._transaction() as db:
            db.executemany("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", _runs(seqs))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
