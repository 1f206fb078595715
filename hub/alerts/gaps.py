"""The built-in `gaps` rule: an agent whose points went missing for good, seen in its seq numbers (`hub.agents`).

A hole in an agent's seqs is normal for a moment (an outbox drains what a broker outage held back, out of order), so
a hole must stay open for `for_s` before it fires. Points lost stay lost, so the alert resolves once no new hole has
opened for `clear_after_s` (or the holes were filled after all); the count it fired at becomes the new baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hub.alerts.config import GAPS, GapsConfig
from hub.alerts.state import FIRING, RESOLVED, Alert, Change


@dataclass
class Tracked:
    # Missing seqs already accounted for (alerted on, or there when the hub started); None: unknown, for an alert
    # restored from before a restart of the hub, whose book of seqs starts empty.
    baseline: int | None = 0
    grown_ms: int | None = None  # when the count first rose past the baseline
    last_growth_ms: int = 0
    seen: int = 0  # the count at the last look


class GapWatch:
    def __init__(self, cfg: GapsConfig) -> None:
        self.cfg = cfg
        self.agents: dict[tuple[str, str], Tracked] = {}

    def tick(self, now_ms: int, missing: dict[tuple[str, str], int],
             alerts: dict[tuple[str, str, str], Alert]) -> list[tuple[tuple[str, str, str], Alert | None, Change]]:
        """The changes for this look at each agent's count of missing seqs; `alerts` is the engine's current set."""
        out: list[tuple[tuple[str, str, str], Alert | None, Change]] = []
        for (site, agent), count in missing.items():
            ident = (GAPS, site, agent)
            alert = alerts.get(ident)
            t = self.agents.get((site, agent))
            if t is None:
                t = self.agents[(site, agent)] = Tracked() if alert is None else \
                    Tracked(None, alert.since_ms, alert.ts_ms, count)
            if count > t.seen:
                t.last_growth_ms = now_ms
            t.seen = count
            if alert is None:
                if t.baseline is None or count <= t.baseline:
                    t.grown_ms = None  # filled by late points, or never grew
                    t.baseline = count
                    continue
                t.grown_ms = t.grown_ms if t.grown_ms is not None else now_ms
                if now_ms - t.grown_ms >= self.cfg.for_s * 1000:
                    lost = count - t.baseline
                    summary = f"agent {site}/{agent} lost {lost} point{'s' if lost != 1 else ''} (seq gaps)"
                    fired = Alert(GAPS, site, agent, FIRING, t.grown_ms, now_ms, self.cfg.severity, summary,
                                  float(lost), 0.0, notified=True)
                    out.append((ident, fired, Change(fired, notify=True)))
                continue
            filled = t.baseline is not None and count <= t.baseline
            if filled or now_ms - t.last_growth_ms >= self.cfg.clear_after_s * 1000:
                resolved = replace(alert, state=RESOLVED, ts_ms=now_ms)
                out.append((ident, None, Change(resolved, notify=alert.notified)))
                t.baseline, t.grown_ms = count, None
        return out
