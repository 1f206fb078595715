"""One alert's life, as pure logic: pending while a rule's condition holds for less than its `for_s`, then firing,
then resolved once the value is back past the rule's `clear_at` (the hysteresis band).

Everything is judged on the points' own time, so a backlog from an outbox is judged as it happened; whether a change
is also *notified* depends on how old it is (`notify_within_ms`): an overload that ended an hour ago is history, not
a page. An alert that fired unnotified is notified as soon as a recent point shows it still holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from hub.alerts.config import ThresholdRule

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"
FIELD_UNITS = {"w": "W", "a": "A", "va": "VA", "value": ""}


@dataclass(frozen=True)
class Alert:
    """One (rule, site, subject): what it is now. `notified`: its firing went out (so its resolution must too)."""

    rule: str
    site: str
    subject: str
    state: str
    since_ms: int  # when the condition began to hold
    ts_ms: int  # the time of the newest evidence (a point's ts, or the clock for stale and offline)
    severity: str
    summary: str
    value: float | None
    limit: float | None
    notified: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.site, self.subject)

    def to_json(self) -> dict[str, object]:
        """The shape of `GET /api/v1/alerts` and of the MQTT alert topic's payload (SPEC.md sections 2 and 7)."""
        return {"rule": self.rule, "site": self.site, "subject": self.subject, "state": self.state,
                "since": self.since_ms, "ts": self.ts_ms, "severity": self.severity, "summary": self.summary,
                "value": self.value, "limit": self.limit}


@dataclass(frozen=True)
class Change:
    """A new state to record; `notify`: also send it to Alertmanager, the webhook and MQTT."""

    alert: Alert
    notify: bool


def threshold_summary(rule: ThresholdRule, subject: str, field: str, value: float) -> str:
    unit = FIELD_UNITS.get(field, "")
    side = "above" if rule.above is not None else "below"
    held = f" for {rule.for_s:g} s" if rule.for_s else ""
    return f"{subject}: {field} {value:g}{' ' + unit if unit else ''} is {side} {rule.limit:g}{held} ({rule.name})"


def judge(rule: ThresholdRule, alert: Alert | None, site: str, subject: str, ts_ms: int, value: float,
          now_ms: int, notify_within_ms: int, summary: Callable[[float], str]) -> tuple[Alert | None, Change | None]:
    """The alert after one more point of its subject, and the change to record, if any; `summary` words a value."""
    recent = now_ms - ts_ms <= notify_within_ms
    if alert is None or alert.state == RESOLVED:
        if not rule.breached(value):
            return None, None
        alert = Alert(rule.name, site, subject, PENDING, ts_ms, ts_ms, rule.severity,
                      summary(value), value, rule.limit)
        if rule.for_s > 0:
            return alert, Change(alert, notify=False)
        return _fire(alert, recent)
    if ts_ms <= alert.ts_ms:
        return alert, None  # a retransmission, or a point older than what was judged: it changes nothing
    if alert.state == PENDING:
        if not rule.breached(value):
            return None, Change(replace(alert, state=RESOLVED, ts_ms=ts_ms, value=value), notify=False)
        alert = replace(alert, ts_ms=ts_ms, value=value, summary=summary(value))
        if ts_ms - alert.since_ms >= rule.for_s * 1000:
            return _fire(alert, recent)
        return alert, None
    if rule.cleared(value):
        resolved = replace(alert, state=RESOLVED, ts_ms=ts_ms, value=value)
        return None, Change(resolved, notify=alert.notified)
    alert = replace(alert, ts_ms=ts_ms, value=value)
    if not alert.notified and recent:  # a backlog's old overload has caught up with the present, still over
        alert = replace(alert, notified=True, summary=summary(value))
        return alert, Change(alert, notify=True)
    return alert, None


def _fire(alert: Alert, recent: bool) -> tuple[Alert, Change]:
    fired = replace(alert, state=FIRING, notified=recent)
    return fired, Change(fired, notify=recent)
