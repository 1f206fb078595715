"""The alerts' own SQLite file (`alerts.state_file`): what survives a restart of the hub.

- `active`: the alerts pending or firing, so a restarted hub neither fires again what it already notified nor
  forgets to resolve it;
- `history`: every firing and resolution, notified or not (a backlog's old overload lands only here);
- `outbox`: notifications not yet delivered, per notifier, so Alertmanager or a webhook being down (or the hub
  restarting) loses none; bounded by `alerts.queue_max` per notifier, oldest dropped first and counted;
- `series`: each measured series' newest point and usual interval, for the stale rule across a restart.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import astuple, fields
from pathlib import Path
from typing import Any

import orjson

from hub.alerts.state import FIRING, PENDING, Alert

SCHEMA = """
CREATE TABLE IF NOT EXISTS active (rule TEXT, site TEXT, subject TEXT, state TEXT, since_ms INTEGER, ts_ms INTEGER,
  severity TEXT, summary TEXT, value REAL, lim REAL, notified INTEGER, PRIMARY KEY (rule, site, subject));
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY, rule TEXT, site TEXT, subject TEXT, state TEXT,
  since_ms INTEGER, ts_ms INTEGER, severity TEXT, summary TEXT, value REAL, lim REAL, notified INTEGER);
CREATE INDEX IF NOT EXISTS history_subject ON history (subject, ts_ms);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, notifier TEXT, body BLOB);
CREATE INDEX IF NOT EXISTS outbox_notifier ON outbox (notifier, id);
CREATE TABLE IF NOT EXISTS series (id TEXT PRIMARY KEY, last_ts INTEGER, interval_ms REAL);
"""
COLUMNS = ", ".join("lim" if f.name == "limit" else f.name for f in fields(Alert))
MARKS = ", ".join("?" for _ in fields(Alert))


class AlertDb:
    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def active(self) -> list[Alert]:
        with self._lock:
            rows = self._db.execute(f"SELECT {COLUMNS} FROM active").fetchall()
        return [_alert(row) for row in rows]

    def record(self, changes: list[tuple[Alert, list[str]]]) -> None:
        """New states, in order and in one transaction (a PDU going dark is hundreds at once): each kept (or dropped
        from `active` once resolved), written to the history when it fired or resolved, and queued for each
        notifier it names."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            for alert, to in changes:
                row = astuple(alert)
                if alert.state in (FIRING, PENDING):
                    self._db.execute(f"INSERT OR REPLACE INTO active ({COLUMNS}) VALUES ({MARKS})", row)
                else:
                    self._db.execute("DELETE FROM active WHERE rule = ? AND site = ? AND subject = ?", alert.key)
                if alert.state != PENDING:
                    self._db.execute(f"INSERT INTO history ({COLUMNS}) VALUES ({MARKS})", row)
                body = orjson.dumps(alert.to_json())
                self._db.executemany("INSERT INTO outbox (notifier, body) VALUES (?, ?)", [(n, body) for n in to])

    def history(self, subject: str | None, limit: int) -> list[dict[str, object]]:
        where, args = ("WHERE subject = ?", [subject]) if subject else ("", [])
        with self._lock:
            rows = self._db.execute(f"SELECT {COLUMNS} FROM history {where} ORDER BY id DESC LIMIT ?",
                                    [*args, limit]).fetchall()
        return [_alert(row).to_json() for row in rows]

    def pending_notifications(self, notifier: str, limit: int) -> list[tuple[int, dict[str, object]]]:
        with self._lock:
            rows = self._db.execute("SELECT id, body FROM outbox WHERE notifier = ? ORDER BY id LIMIT ?",
                                    (notifier, limit)).fetchall()
        return [(i, orjson.loads(body)) for i, body in rows]

    def delivered(self, ids: list[int]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def trim_outbox(self, notifier: str, keep: int) -> int:
        """Drop the oldest notifications past `keep`; how many were dropped."""
        with self._lock:
            cur = self._db.execute("DELETE FROM outbox WHERE notifier = ? AND id NOT IN (SELECT id FROM outbox "
                                   "WHERE notifier = ? ORDER BY id DESC LIMIT ?)", (notifier, notifier, keep))
            return cur.rowcount

    def save_series(self, rows: list[tuple[str, int, float | None]]) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO series (id, last_ts, interval_ms) VALUES (?, ?, ?)", rows)

    def load_series(self) -> list[tuple[str, int, float | None]]:
        with self._lock:
            return [(str(a), int(b), c) for a, b, c in self._db.execute("SELECT id, last_ts, interval_ms FROM series")]


def _alert(row: tuple[Any, ...]) -> Alert:
    rule, site, subject, state, since_ms, ts_ms, severity, summary, value, limit, notified = row
    return Alert(rule, site, subject, state, since_ms, ts_ms, severity, summary, value, limit, bool(notified))
