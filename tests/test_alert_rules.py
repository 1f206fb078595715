"""The alert rules as pure logic: thresholds with for_s and hysteresis, late points, and the config's errors."""

from __future__ import annotations

from typing import Any

import pytest

from hub.alerts.config import AlertsConfig, ThresholdRule
from hub.alerts.state import FIRING, PENDING, RESOLVED, Alert, Change, judge, threshold_summary
from hub.config import HubConfig
from telemetry.config import ConfigError, Section

NOW = 1_800_000_000_000
WITHIN = 300_000
SUBJECT = "lab.pdu-a.outlet-1"


def rule(**keys: Any) -> ThresholdRule:
    doc = {"name": "hot", "series": "lab.pdu-*.outlet-*", **keys}
    return AlertsConfig.parse(Section({"alerts": {"rules": [doc]}}, "")).rules[0]


def run(r: ThresholdRule, points: list[tuple[int, float]], now: int = NOW) -> tuple[Alert | None, list[Change]]:
    alert, changes = None, []
    for ts, value in points:
        alert, change = judge(r, alert, "lab", SUBJECT, ts, value, now, WITHIN,
                              lambda v: threshold_summary(r, SUBJECT, "w", v))
        if change:
            changes.append(change)
    return alert, changes


def test_above_fires_at_once_without_for_and_resolves_past_the_hysteresis_band() -> None:
    r = rule(above=500.0)
    assert r.clear_at == 475.0  # 5 % inside the limit by default
    alert, changes = run(r, [(NOW - 5000, 400.0), (NOW - 4000, 510.0), (NOW - 3000, 480.0), (NOW - 2000, 501.0)])
    assert alert is not None and alert.state == FIRING and alert.since_ms == NOW - 4000 and alert.value == 501.0
    assert [(c.alert.state, c.notify) for c in changes] == [(FIRING, True)]  # 480 is inside the band: no flap
    assert changes[0].alert.summary == "lab.pdu-a.outlet-1: w 510 W is above 500 (hot)"
    alert, changes = run(r, [(NOW - 4000, 510.0), (NOW - 1000, 475.0)])
    assert alert is None and [(c.alert.state, c.notify, c.alert.value) for c in changes] == [
        (FIRING, True, 510.0), (RESOLVED, True, 475.0)]


def test_below_with_for_fires_only_once_it_held_that_long() -> None:
    r = rule(below=10.0, for_s=30)
    assert r.clear_at == 10.5
    alert, changes = run(r, [(NOW - 60_000, 5.0), (NOW - 40_000, 5.0), (NOW - 35_000, 20.0), (NOW - 30_000, 5.0),
                             (NOW - 10_000, 5.0)])
    assert alert is not None and alert.state == PENDING and alert.since_ms == NOW - 30_000  # the 20 W reset it
    alert, changes = run(r, [(NOW - 30_000, 5.0), (NOW, 9.0)])
    assert alert is not None and alert.state == FIRING and changes[-1].notify
    assert "below 10 for 30 s" in alert.summary


def test_an_old_overload_from_a_backlog_is_recorded_not_paged() -> None:
    r = rule(above=500.0)
    hour_ago = NOW - 3_600_000
    alert, changes = run(r, [(hour_ago, 600.0), (hour_ago + 1000, 100.0)])
    assert alert is None and [(c.alert.state, c.notify) for c in changes] == [(FIRING, False), (RESOLVED, False)]
    # An overload that began in the backlog and still holds now is paged when the present reaches it.
    alert, changes = run(r, [(hour_ago, 600.0), (NOW - 1000, 650.0), (NOW, 700.0)])
    assert [(c.alert.state, c.notify) for c in changes] == [(FIRING, False), (FIRING, True)]
    assert alert is not None and alert.notified and alert.since_ms == hour_ago


def test_a_point_older_than_the_last_judged_changes_nothing() -> None:
    r = rule(above=500.0)
    alert, changes = run(r, [(NOW - 1000, 600.0), (NOW - 2000, 100.0)])
    assert alert is not None and alert.state == FIRING and len(changes) == 1


def test_a_value_exactly_at_the_limit_does_not_breach() -> None:
    assert run(rule(above=500.0), [(NOW, 500.0)]) == (None, [])
    assert run(rule(below=0.0), [(NOW, 0.0)]) == (None, [])


def test_glob_matches_series_ids() -> None:
    r = rule(above=1.0)
    assert r.matches("lab.pdu-a3.outlet-12") and not r.matches("lab.pdu-a3.total")
    assert not r.matches("lab2.pdu-a3.outlet-1") and not r.matches("lab.node.outlet-1")


@pytest.mark.parametrize(("keys", "error"), [
    ({"above": 1.0, "field": "watts"}, "alerts.rules[0].field: must be one of 'w', 'a', 'va', 'value'"),
    ({"above": 1.0, "below": 0.5}, "alerts.rules[0].above: give exactly one of above and below"),
    ({}, "alerts.rules[0].above: give exactly one of above and below"),
    ({"above": 1.0, "series": "pdu-*"}, "alerts.rules[0].series: must be a glob over site.device.channel ids"),
    ({"above": 1.0, "series": "Lab.X.y"}, "alerts.rules[0].series: must be a glob"),
    ({"above": 1.0, "name": "Hot rule"}, "alerts.rules[0].name: "),
    ({"above": 1.0, "name": "stale"}, "alerts.rules[0].name: 'stale' is a built-in rule's name"),
    ({"above": 1.0, "clear_at": 2.0}, "alerts.rules[0].clear_at: must be on the normal side of the limit 1"),
    ({"below": 1.0, "clear_at": 0.5}, "alerts.rules[0].clear_at: must be on the normal side of the limit 1"),
    ({"above": 1.0, "for_s": -1}, "alerts.rules[0].for_s: must be 0 or more"),
    ({"above": 1.0, "severity": "page"}, "alerts.rules[0].severity: must be one of 'warning', 'critical'"),
    ({"above": 1.0, "abov": 2.0}, "alerts.rules[0].abov: unknown key (did you mean above?)"),
])
def test_a_bad_rule_is_a_config_error_with_its_path(keys: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as exc:
        rule(**keys)
    assert str(exc.value).startswith(error)


@pytest.mark.parametrize(("doc", "error"), [
    ({"alerts": {"rules": [{"name": "a", "series": "*.*.*", "above": 1}] * 2}},
     "alerts.rules[1].name: 'a' is already the name of another rule"),
    ({"alerts": {"alertmanager_url": "127.0.0.1:9093"}}, "alerts.alertmanager_url: must be an http:// or https://"),
    ({"alerts": {"stale": {"intervals": 0}}}, "alerts.stale.intervals: must be greater than 0"),
    ({"alerts": {"offline": {"enabled": "yes"}}}, "alerts.offline.enabled: must be true or false"),
    ({"alert": {}}, "alert: unknown section (did you mean alerts?)"),
    ({"alerts": {"gaps": {"clear_after_s": 0}}}, "alerts.gaps.clear_after_s: must be greater than 0"),
    ({"alerts": {"rules": [{"name": "hot", "series": "lba.*.*", "above": 1}]},
      "inventory": {"machines": [{"name": "node17", "site": "lab", "sources": ["node17.power"]}]}},
     "alerts.rules[0].series: 'lba.*.*' matches no site the config knows (lab)"),
    ({"alerts": {"gap": {}}}, "alerts.gap: unknown key (did you mean gaps?)"),
])
def test_bad_alerts_settings_are_config_errors(doc: dict[str, Any], error: str) -> None:
    from telemetry.config import check_sections

    with pytest.raises(ConfigError) as exc:
        check_sections(doc)
        HubConfig.parse(doc)
    assert str(exc.value).startswith(error)


def test_alerts_are_off_only_with_no_rule_and_the_built_in_ones_switched_off() -> None:
    assert HubConfig.parse({}).alerts is not None  # stale and offline are on by default
    off = {"alerts": {"stale": {"enabled": False}, "offline": {"enabled": False}, "capacity": {"enabled": False},
                      "gaps": {"enabled": False}}}
    assert HubConfig.parse(off).alerts is None


def gap_watch(for_s: float = 60.0, clear_after_s: float = 3600.0) -> Any:
    from hub.alerts.config import GapsConfig
    from hub.alerts.gaps import GapWatch

    return GapWatch(GapsConfig(True, for_s, clear_after_s, "warning"))


def look(watch: Any, alerts: dict[Any, Alert], now: int, missing: int) -> list[str]:
    """One tick with `missing` seqs for agent lab/pi; the engine's alert set updated; the states it changed to."""
    out = []
    for ident, alert, change in watch.tick(now, {("lab", "pi"): missing}, alerts):
        if alert is None:
            alerts.pop(ident, None)
        else:
            alerts[ident] = alert
        out.append(change.alert.state)
    return out


def test_a_hole_fires_only_once_it_stayed_open_for_s_and_resolves_after_clear_after_s_without_a_new_one() -> None:
    watch, alerts = gap_watch(), {}
    assert look(watch, alerts, NOW, 0) == []
    assert look(watch, alerts, NOW + 1000, 3) == []  # open for a moment: an outbox may still fill it
    assert look(watch, alerts, NOW + 30_000, 0) == []  # it did
    assert look(watch, alerts, NOW + 40_000, 2) == []
    assert look(watch, alerts, NOW + 100_000, 2) == [FIRING]  # open for 60 s
    (alert,) = alerts.values()
    assert (alert.subject, alert.since_ms, alert.value) == ("pi", NOW + 40_000, 2.0)
    assert alert.summary == "agent lab/pi lost 2 points (seq gaps)"
    assert look(watch, alerts, NOW + 2_000_000, 5) == []  # it grew: the hour starts again
    assert look(watch, alerts, NOW + 2_000_000 + 3_599_000, 5) == []
    assert look(watch, alerts, NOW + 2_000_000 + 3_600_000, 5) == [RESOLVED]
    assert look(watch, alerts, NOW + 2_000_000 + 3_700_000, 5) == []  # 5 is the new baseline


def test_a_gaps_alert_from_before_a_restart_waits_out_clear_after_s_rather_than_resolving_on_an_empty_book() -> None:
    restored = Alert("gaps", "lab", "pi", FIRING, NOW - 10_000, NOW - 5000, "warning", "lost", 2.0, 0.0, True)
    watch, alerts = gap_watch(clear_after_s=60.0), {restored.key: restored}
    assert look(watch, alerts, NOW, 0) == []  # the restarted hub's book has seen no seq yet
    assert look(watch, alerts, NOW + 54_000, 0) == []
    assert look(watch, alerts, NOW + 55_000, 0) == [RESOLVED]  # a minute after its newest evidence


def test_a_rule_for_a_known_site_or_a_config_that_knows_no_site_waits_for_its_series() -> None:
    machines = {"machines": [{"name": "node17", "site": "lab", "sources": ["node17.power"]}]}
    for doc in ({"alerts": {"rules": [{"name": "hot", "series": "l?b.pdu-*.*", "above": 1}]}, "inventory": machines},
                {"alerts": {"rules": [{"name": "hot", "series": "shed.pdu-*.*", "above": 1}]}}):
        assert HubConfig.parse(doc).alerts is not None
