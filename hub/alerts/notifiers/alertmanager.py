"""Prometheus Alertmanager through its v2 API (`POST /api/v2/alerts`): its routing, grouping, silences and
receivers are what operators already run.

Labels `alertname` (the rule), `site`, `subject`, `severity`; annotations `summary`, `value`, `limit` (SPEC.md
section 7). A firing alert is posted with an `endsAt` VALID_S ahead and re-posted every `base.REFRESH_S`, as
Prometheus does: Alertmanager takes a re-post of the same labels as the same alert (no second page), and if the
hub vanishes for good its alerts end by themselves. A resolution is posted with `endsAt` at the moment it resolved."""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from hub.alerts.notifiers.http import post_json
from hub.alerts.state import RESOLVED
from telemetry.timeunits import now_ms

VALID_S = 3600.0  # a hub restart within this does not end (and re-page) what fires


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def am_alert(alert: dict[str, object], now: int) -> dict[str, object]:
    value, limit = alert["value"], alert["limit"]
    ends = int(alert["ts"]) if alert["state"] == RESOLVED else now + int(VALID_S * 1000)  # type: ignore[call-overload]
    return {
        "labels": {"alertname": alert["rule"], "site": alert["site"], "subject": alert["subject"],
                   "severity": alert["severity"]},
        "annotations": {"summary": alert["summary"], "value": "" if value is None else f"{value:g}",
                        "limit": "" if limit is None else f"{limit:g}"},
        "startsAt": iso(int(alert["since"])),  # type: ignore[call-overload]
        "endsAt": iso(max(ends, int(alert["since"]) + 1)),  # type: ignore[call-overload]
    }


class Alertmanager:
    name = "alertmanager"

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.session = requests.Session()

    def deliver(self, alerts: list[dict[str, object]]) -> None:
        now = now_ms()
        latest = {(a["rule"], a["site"], a["subject"]): a for a in alerts}  # one per alert: its newest state
        post_json(self.session, self.url, [am_alert(a, now) for a in latest.values()])

    def refresh(self, firing: list[dict[str, object]]) -> None:
        if firing:
            self.deliver(firing)
