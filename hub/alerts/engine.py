"""The alert engine: judges every stored point against the rules, watches for series gone quiet and agents gone
offline, records each change (`hub.alerts.db`) and hands it to the couriers.

`observe` runs in the hub's writer threads right after a batch is stored (and after formulas write theirs), so it
does only memory work: which rules a series falls under is worked out once per series, and a point under no rule
costs a dict lookup and the stale rule's bookkeeping. Recording and notifying happen in the engine's own thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from hub.alerts.builtin import Ratings, Redundancy, Summary
from hub.alerts.config import OFFLINE, STALE, AlertsConfig, ThresholdRule
from hub.alerts.db import AlertDb
from hub.alerts.gaps import GapWatch
from hub.alerts.notifiers import Courier, Notifier
from hub.alerts.state import FIRING, PENDING, RESOLVED, Alert, Change, judge, threshold_summary
from telemetry import Point, SeriesKey
from telemetry.metrics import Metrics
from telemetry.series import CURRENT, is_derived_channel
from telemetry.timeunits import now_ms as clock_ms

log = logging.getLogger(__name__)

TICK_S = 1.0  # how often quiet series and offline agents are looked at
SAVE_SERIES_S = 60.0
INTERVAL_WEIGHT = 0.2  # how fast a series' usual interval follows a change of its rate
LOG_EACH = 10  # changes of one rule and state logged one by one per batch; the rest in one line


@dataclass
class Seen:
    """A measured series' newest point and usual interval between points (an average that a gap barely moves)."""

    last_ts: int
    interval_ms: float | None = None

    def point(self, ts_ms: int) -> None:
        delta = ts_ms - self.last_ts
        if delta <= 0:
            return
        if self.interval_ms is None:
            self.interval_ms = float(delta)
        else:
            self.interval_ms += INTERVAL_WEIGHT * (min(delta, 4 * self.interval_ms) - self.interval_ms)
        self.last_ts = ts_ms


@dataclass(frozen=True)
class Watched:
    """What a series falls under: threshold rules (with the field each judges and how it words a value), the
    capacity rules (rated per point), the A/B check, the stale rule."""

    rules: tuple[tuple[ThresholdRule, str, Summary], ...]
    capacity: bool
    redundancy: bool
    stale: bool


class AlertEngine:
    def __init__(self, cfg: AlertsConfig, metrics: Metrics, notifiers: list[Notifier],
                 now_ms: Callable[[], int] = clock_ms) -> None:
        self.cfg, self.metrics, self.now_ms = cfg, metrics, now_ms
        self.db = AlertDb(cfg.state_file)
        self.notifiers = notifiers
        self.couriers = [Courier(n, self.db, metrics, cfg.retry_max_s, cfg.queue_max, self.notified_firing)
                         for n in notifiers]
        self._lock = threading.Lock()
        self._alerts: dict[tuple[str, str, str], Alert] = {a.key: a for a in self.db.active()}
        self._watched: dict[SeriesKey, Watched] = {}
        self._seen: dict[str, Seen] = {sid: Seen(ts, iv) for sid, ts, iv in self.db.load_series()}
        self._agents: dict[tuple[str, str], tuple[bool, int]] = {}  # (site, agent) -> (online, since)
        self._changes: queue.Queue[Change] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="alerts", daemon=True)
        self.notify_within_ms = int(cfg.notify_within_s * 1000)
        self.ratings = Ratings(cfg)
        self.redundancy = Redundancy(cfg)
        self.gaps = GapWatch(cfg.gaps)
        # Each agent's count of missing seqs (the hub's AgentBook); None: unknown, as on a shared subscription.
        self.gap_counts: Callable[[], dict[tuple[str, str], int]] | None = None
        for rule, count in self._counts({a.rule for a in self._alerts.values()}).items():
            self.metrics.set("powerhub_alerts_firing", count, rule=rule)

    # --- fed by the hub -------------------------------------------------------------------------------------------

    def observe(self, points: list[Point]) -> None:
        """Points just stored (measured or derived)."""
        now = self.now_ms()
        changes: list[Change] = []
        with self._lock:
            last_key, watched = None, None
            for p in points:
                if p.key is not last_key:
                    last_key, watched = p.key, self._watched.get(p.key) or self._watch(p.key)
                assert watched is not None
                if watched.stale:
                    seen = self._seen.get(p.key.id)
                    if seen is None:
                        self._seen[p.key.id] = Seen(p.ts_ms)
                    else:
                        seen.point(p.ts_ms)
                for rule, field, summary in watched.rules:
                    value = p.field_number(field)
                    if value is not None:
                        self._judge(rule, p.key.site, p.key.id, p.ts_ms, value, now, summary, changes)
                if watched.capacity:
                    amps = p.field_number("a")
                    if amps is not None:
                        for rule, summary in self.ratings.capacity(p.key, p):
                            self._judge(rule, p.key.site, p.key.id, p.ts_ms, amps, now, summary, changes)
                if watched.redundancy:
                    self.redundancy.point(p.key, p)
        for change in changes:
            self._changes.put(change)

    def agent_status(self, site: str, agent: str, online: bool, since_ms: int | None) -> None:
        with self._lock:
            self._agents[(site, agent)] = (online, since_ms if since_ms is not None else self.now_ms())
        self._tick_agents()

    def firing(self) -> list[dict[str, object]]:
        with self._lock:
            return [a.to_json() for a in self._alerts.values() if a.state == FIRING]

    def notified_firing(self) -> list[dict[str, object]]:
        """What the notifiers were told fires and still does (for Alertmanager's refresh)."""
        with self._lock:
            return [a.to_json() for a in self._alerts.values() if a.state == FIRING and a.notified]

    def history(self, subject: str | None = None, limit: int = 1000) -> list[dict[str, object]]:
        return self.db.history(subject, limit)

    # --- the rules ------------------------------------------------------------------------------------------------

    def _watch(self, key: SeriesKey) -> Watched:
        sid = key.id
        fields = [(r, r.field or key.main_field) for r in self.cfg.rules if r.matches(sid)]
        rules = [(r, f, _words(r, sid, f)) for r, f in fields]
        watched = Watched((*rules, *self.ratings.site_limits(key)), key.measurement == CURRENT.name,
                          self.redundancy.watches(key), self.cfg.stale.enabled and not is_derived_channel(key.channel))
        self._watched[key] = watched
        return watched

    def _judge(self, rule: ThresholdRule, site: str, subject: str, ts_ms: int, value: float, now: int,
               summary: Summary, changes: list[Change]) -> None:
        ident = (rule.name, site, subject)
        before = self._alerts.get(ident)
        after, change = judge(rule, before, site, subject, ts_ms, value, now, self.notify_within_ms, summary)
        if after is None:
            self._alerts.pop(ident, None)
        else:
            self._alerts[ident] = after
        if change is not None:
            changes.append(change)

    def _set(self, alert: Alert | None, ident: tuple[str, str, str], change: Change) -> None:
        """Under the lock: the built-in rules' changes."""
        if alert is None:
            self._alerts.pop(ident, None)
        else:
            self._alerts[ident] = alert
        self._changes.put(change)

    def _tick_stale(self, now: int) -> None:
        cfg = self.cfg.stale
        if not cfg.enabled:
            return
        min_ms = cfg.min_s * 1000
        with self._lock:
            for sid, seen in self._seen.items():
                if seen.interval_ms is None:
                    continue  # one point: no usual interval to judge by yet
                quiet_ms = now - seen.last_ts
                ident = (STALE, sid.split(".", 1)[0], sid)
                alert = self._alerts.get(ident)
                allowed_ms = max(cfg.intervals * seen.interval_ms, min_ms)
                if alert is None and quiet_ms > allowed_ms:
                    summary = (f"{sid} has not reported for {quiet_ms / 1000:.0f} s "
                               f"(usually every {seen.interval_ms / 1000:.3g} s)")
                    fired = Alert(STALE, ident[1], sid, FIRING, seen.last_ts, now, cfg.severity, summary,
                                  quiet_ms / 1000, allowed_ms / 1000, notified=True)
                    self._set(fired, ident, Change(fired, notify=True))
                elif alert is not None and quiet_ms <= allowed_ms:
                    resolved = replace(alert, state=RESOLVED, ts_ms=now, value=quiet_ms / 1000)
                    self._set(None, ident, Change(resolved, notify=alert.notified))

    def _tick_redundancy(self, now: int) -> None:
        if not self.redundancy.twins:
            return
        changes: list[Change] = []
        with self._lock:
            for twin, amps, rating in self.redundancy.judgements():
                rule, summary = self.redundancy.rule(twin, rating)
                self._judge(rule, twin.pdu.site, twin.pdu.device, now, amps, now, summary, changes)
        for change in changes:
            self._changes.put(change)

    def _tick_gaps(self, now: int) -> None:
        if not self.cfg.gaps.enabled or self.gap_counts is None:
            return
        counts = self.gap_counts()
        with self._lock:
            for ident, alert, change in self.gaps.tick(now, counts, self._alerts):
                self._set(alert, ident, change)

    def _tick_agents(self) -> None:
        cfg = self.cfg.offline
        if not cfg.enabled:
            return
        now = self.now_ms()
        with self._lock:
            for (site, agent), (online, since) in self._agents.items():
                ident = (OFFLINE, site, agent)
                alert = self._alerts.get(ident)
                if not online and alert is None and now - since >= cfg.for_s * 1000:
                    at = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(since / 1000))
                    summary = f"agent {site}/{agent} is offline since {at}"
                    fired = Alert(OFFLINE, site, agent, FIRING, since, now, cfg.severity, summary, None, None,
                                  notified=True)
                    self._set(fired, ident, Change(fired, notify=True))
                elif online and alert is not None:
                    resolved = replace(alert, state=RESOLVED, ts_ms=since)
                    self._set(None, ident, Change(resolved, notify=alert.notified))

    # --- recording and notifying ----------------------------------------------------------------------------------

    def start(self) -> None:
        for courier in self.couriers:
            courier.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._record_all()
        self._save_series()
        for courier in self.couriers:
            courier.stop()
        self.db.close()

    def _loop(self) -> None:
        next_tick = next_save = time.monotonic()
        while not self._stop.is_set():
            try:
                change = self._changes.get(timeout=max(0.0, next_tick - time.monotonic()))
                self._record_all([change])
            except queue.Empty:
                pass
            except Exception:  # a bug here must not stop the hub from storing
                log.exception("alerts: recording a change failed; going on")
            mono = time.monotonic()
            if mono >= next_tick:
                next_tick = mono + TICK_S
                self._tick_stale(self.now_ms())
                self._tick_agents()
                self._tick_redundancy(self.now_ms())
                self._tick_gaps(self.now_ms())
            if mono >= next_save:
                next_save = mono + SAVE_SERIES_S
                self._save_series()

    def _record_all(self, changes: list[Change] | None = None) -> None:
        """Every change waiting, recorded in one transaction, logged, counted, and handed to the couriers."""
        changes = changes or []
        while True:
            try:
                changes.append(self._changes.get_nowait())
            except queue.Empty:
                break
        if not changes:
            return
        names = [n.name for n in self.notifiers]
        self.db.record([(c.alert, names if c.notify else []) for c in changes])
        logged: dict[tuple[str, str], int] = {}
        for change in changes:
            alert = change.alert
            if alert.state == PENDING:
                continue
            self.metrics.inc("powerhub_alerts_total", rule=alert.rule, state=alert.state)
            seen = logged[(alert.rule, alert.state)] = logged.get((alert.rule, alert.state), 0) + 1
            if seen <= LOG_EACH:
                log.log(logging.WARNING if alert.state == FIRING else logging.INFO, "alert %s %s: %s%s", alert.rule,
                        alert.state, alert.summary, "" if change.notify else " (not notified: in the past)")
        for (rule, state), seen in logged.items():
            if seen > LOG_EACH:  # a flood (a PDU going dark): one line for the rest, not one per outlet
                log.warning("alert %s: %d more %s at once (GET /api/v1/alerts lists them)", rule, seen - LOG_EACH,
                            state)
        with self._lock:
            counts = self._counts({c.alert.rule for c in changes})
        for rule, count in counts.items():
            self.metrics.set("powerhub_alerts_firing", count, rule=rule)
        if any(c.notify for c in changes):
            for courier in self.couriers:
                courier.wake()

    def _counts(self, rules: set[str]) -> dict[str, int]:
        """Under the lock: how many alerts of each rule fire."""
        counts = dict.fromkeys(rules, 0)
        for a in self._alerts.values():
            if a.state == FIRING and a.rule in counts:
                counts[a.rule] += 1
        return counts

    def _save_series(self) -> None:
        with self._lock:
            rows = [(sid, s.last_ts, s.interval_ms) for sid, s in self._seen.items()]
        self.db.save_series(rows)


def _words(rule: ThresholdRule, subject: str, field: str) -> Summary:
    return lambda value: threshold_summary(rule, subject, field, value)
