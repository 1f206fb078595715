"""Formulas, with answers known by hand: a constant 1 kW for an hour is 1 kWh; a gap is no energy; a blink meter's
energy is exact; a 25-hour local day has 25 kWh. The stream run (points noted as the hub stores them) equals the
post-mortem run (`powerhub formula`) on the same points, and running either twice stores nothing twice."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.config import HubConfig
from hub.formulas import FormulaRunner
from hub.formulas.energy import EnergyFormula, energy_kwh
from hub.run import start_hub
from hub.stores import Store, open_store
from powerhub_cli import main
from telemetry import Point, SeriesKey
from telemetry.config import ConfigError
from telemetry.metrics import Metrics
from tests.peers import Publisher, wait_for

KEY = SeriesKey("lab", "node17", "power")
HOUR = 3_600_000
T0 = 1_700_000_000_000 // HOUR * HOUR  # an hour boundary
MIN, MAX = 10**12, 9 * 10**12


def sampled(key: SeriesKey, start: int, end: int, step_ms: int, w: float, seq0: int = 1) -> list[Point]:
    return [Point(key, t, seq0 + i, {"w": w}) for i, t in enumerate(range(start, end + 1, step_ms))]


def test_constant_kilowatt_for_an_hour_is_one_kwh() -> None:
    assert energy_kwh(sampled(KEY, T0, T0 + HOUR, 10_000, 1000.0), T0, T0 + HOUR, 300_000) == pytest.approx(1.0)


def test_a_gap_is_not_energy() -> None:
    pts = [p for p in sampled(KEY, T0, T0 + HOUR, 10_000, 1000.0) if not T0 + 20 * 60_000 < p.ts_ms < T0 + 30 * 60_000]
    assert energy_kwh(pts, T0, T0 + HOUR, 300_000) == pytest.approx(50 / 60)  # the 10 minutes are missing
    assert energy_kwh(pts, T0, T0 + HOUR, 900_000) == pytest.approx(1.0)  # with a 15-minute gap_s they count


def test_blink_meter_energy_is_exact_across_long_intervals() -> None:
    # 10 W on a 1000 imp/kWh meter: one blink every 360 s, longer than gap_s; each blink carries its own interval.
    blinks = [Point(KEY, T0 + k * 360_000, k, {"w": 10.0, "ms": 360_000}) for k in range(1, 11)]
    assert energy_kwh(blinks, T0, T0 + HOUR, 300_000) == pytest.approx(0.010)


def test_no_point_near_the_window_is_none_not_zero() -> None:
    assert energy_kwh(sampled(KEY, T0, T0 + 60_000, 10_000, 5.0), T0 + 5 * HOUR, T0 + 6 * HOUR, 300_000) is None


def energy_points(store: Store) -> dict[tuple[str, int], float]:
    out = {}
    for info in store.series():
        if info.key.measurement == "energy":
            for p in store.points(info.key, MIN, MAX, 100_000):
                out[(info.key.id, p.ts_ms)] = round(float(p.fields["value"]), 9)
    return out


def test_stream_equals_post_mortem_and_twice_stores_once(store: Store, tmp_path: Path) -> None:
    cph = ZoneInfo("Europe/Copenhagen")
    start = int(datetime(2023, 10, 28, 22, tzinfo=cph).timestamp() * 1000)  # into the 25-hour day 2023-10-29
    points = sampled(KEY, start, start + 30 * HOUR, 30_000, 1000.0)
    formula = EnergyFormula(300_000, cph)
    stream = FormulaRunner(store, [formula])
    for i in range(0, len(points), 500):  # as the hub stores batches and notes them
        store.write(points[i:i + 500])
        stream.note(points[i:i + 500])
        if i % 1500 == 0:
            stream.flush()
    stream.flush()
    streamed = energy_points(store)

    other = open_store(f"sqlite:///{tmp_path}/post-mortem.sqlite")
    other.write(points)
    runner = FormulaRunner(other, [formula])
    runner.replay("energy", start - HOUR, start + 31 * HOUR)
    post_mortem = energy_points(other)
    assert streamed == post_mortem
    day = int(datetime(2023, 10, 29, tzinfo=cph).timestamp() * 1000)
    assert post_mortem[("lab.node17.energy-day-power", day)] == pytest.approx(25.0)  # 1 kW, a 25-hour day
    assert post_mortem[("lab.node17.energy-hour-power", start + 2 * HOUR)] == pytest.approx(1.0)

    runner.replay("energy", start - HOUR, start + 31 * HOUR)
    assert energy_points(other) == post_mortem
    assert sum(len(other.points(i.key, MIN, MAX, 100_000)) for i in other.series()
               if i.key.measurement == "energy") == len(post_mortem)
    other.close()


def test_the_hub_runs_formulas_live(mqtt_doc: dict[str, Any], store_url: str, mqtt_root: str) -> None:
    doc = {"mqtt": mqtt_doc, "hub": {"client_id": f"hub-{mqtt_root}", "batch_age_s": 0.05},
           "store": {"url": store_url}, "formulas": {"enabled": ["energy"], "energy": {"gap_s": 60}}}
    metrics = Metrics()
    hub = start_hub(HubConfig.parse(doc), metrics)
    assert hub.formulas is not None
    hub.formulas.every_s = 0.2
    wait_for(hub.connected.is_set, what="the hub to connect")
    raw = Publisher(hub.mqtt)
    try:
        pts = sampled(KEY, T0, T0 + HOUR, 60_000, 600.0)
        raw.send("data/lab/node17/power", json.dumps([p.to_wire() for p in pts]))
        wait_for(lambda: metrics.value("powerhub_formula_points_total", formula="energy") >= 2,
                 what="the energy formula to run")
        hour = hub.store.points(SeriesKey("lab", "node17", "energy-hour-power"), T0, T0 + 1, 10)
        assert hour and hour[0].fields["value"] == pytest.approx(0.6)
        assert hour[0].fields["formula"] == "energy"
    finally:
        raw.close()
        hub.stop()
        hub.store.close()


def test_formula_cli_replays(store: Store, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store.write(sampled(KEY, T0, T0 + 2 * HOUR, 60_000, 1500.0))
    config = tmp_path / "p.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n[formulas]\nenabled = ["energy"]\n')
    assert main(["formula", "energy", "--config", str(config), "--from", str(T0), "--to", str(T0 + 2 * HOUR)]) == 0
    assert "energy: wrote 4 derived points" in capsys.readouterr().out  # 2 hours, each with its day's total
    assert store.points(SeriesKey("lab", "node17", "energy-hour-power"), T0, T0 + 1, 1)[0].fields["value"] == \
        pytest.approx(1.5)
    capsys.readouterr()
    assert main(["formula", "reconcile", "--config", str(config)]) == 2
    assert "not in [formulas] enabled" in capsys.readouterr().err


def test_energy_days_per_site_time_zone() -> None:
    cfg = HubConfig.parse({"formulas": {"enabled": ["energy"], "energy": {"tz": {"lab": "Asia/Tokyo"}}}})
    (formula,) = cfg.formulas
    assert isinstance(formula, EnergyFormula)
    assert formula.site_tz["lab"] == ZoneInfo("Asia/Tokyo") and str(formula.tz) == "UTC"


@pytest.mark.parametrize(("formulas", "message"), [
    ({"enabled": ["energy"], "energy": {"tz": {"lab": "Nowhere/Land"}}}, "formulas.energy.tz.lab: must be an IANA"),
    ({"enabled": ["magic"]}, "formulas.enabled[0]: must be one of"),
    ({"enabled": ["energy"], "energy": {"tz": "Mars/Base"}}, "formulas.energy.tz: must be an IANA time zone"),
    ({"enabled": ["energy"], "energy": {"gap": 5}}, "formulas.energy.gap: unknown key"),
])
def test_formula_config_errors(formulas: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        HubConfig.parse({"formulas": formulas})


PSU1, PSU2 = SeriesKey("lab", "pdu-a3", "outlet-1"), SeriesKey("lab", "pdu-b3", "outlet-1")
BMC, MAIN = SeriesKey("lab", "node17", "power"), SeriesKey("lab", "mainmeter", "power")
COOLING_FREE = SeriesKey("lab", "pdu-a3", "total")
MACHINE_DOC: dict[str, Any] = {
    "inventory": {"machines": [{"name": "web-01", "site": "lab",
                                "sources": ["pdu-a3.outlet-1", "pdu-b3.outlet-1", "node17.power"]}]},
    "formulas": {"enabled": ["machine_power", "reconcile", "energy"],
                 "machine_power": {"step_s": 60}, "reconcile": {"main": {"lab": "mainmeter.power"}, "step_s": 60}},
}


def site_points() -> list[Point]:
    """An hour: web-01 on two outlets (100 W + 150 W) and a BMC reading 240 W; outlet 2 silent for 10 minutes;
    the main meter at 1000 W over a PDU total of 400 W."""
    pts = sampled(PSU1, T0, T0 + HOUR, 10_000, 100.0, 1)
    pts += [p for p in sampled(PSU2, T0, T0 + HOUR, 10_000, 150.0, 1000)
            if not T0 + 20 * 60_000 <= p.ts_ms < T0 + 30 * 60_000]
    pts += sampled(BMC, T0 + 5_000, T0 + HOUR, 10_000, 240.0, 2000)
    pts += sampled(MAIN, T0, T0 + HOUR, 15_000, 1000.0, 3000)
    pts += sampled(COOLING_FREE, T0, T0 + HOUR, 20_000, 400.0, 4000)
    return sorted(pts, key=lambda p: p.ts_ms)


def derived_points(store: Store, measurement: str = "power") -> dict[tuple[str, int], float]:
    out = {}
    for info in store.series():
        if info.key.measurement == measurement and info.key.channel.startswith(("formula-", "energy-")):
            for p in store.points(info.key, MIN, MAX, 100_000):
                out[(info.key.id, p.ts_ms)] = round(float(p.number or 0.0), 9)
    return out


def test_machine_power_psu_loss_and_unmetered(store: Store, tmp_path: Path) -> None:
    cfg = HubConfig.parse({**MACHINE_DOC, "store": {"url": f"sqlite:///{tmp_path}/x.sqlite"}})
    pts = site_points()
    stream = FormulaRunner(store, cfg.formulas)
    for i in range(0, len(pts), 200):
        store.write(pts[i:i + 200])
        stream.note(pts[i:i + 200])
    for _ in range(3):  # derived power feeds energy on the next round
        stream.flush()
    power = derived_points(store)
    minute = T0 + 5 * 60_000
    assert power[("lab.web-01.formula-power", minute)] == 250.0
    assert power[("lab.web-01.formula-psu-loss", minute)] == 10.0
    assert power[("lab.web-01.formula-power", T0 + 25 * 60_000)] == 240.0  # outlet 2 silent: the BMC's reading
    assert ("lab.web-01.formula-psu-loss", T0 + 25 * 60_000) not in power
    assert power[("lab.site.formula-unmetered", minute)] == pytest.approx(1000.0 - 400.0 - 240.0)
    energy = derived_points(store, "energy")
    assert energy[("lab.web-01.energy-hour-formula-power", T0)] == pytest.approx((50 * 250 + 10 * 240) / 60 / 1000,
                                                                                 rel=0.02)

    other = open_store(f"sqlite:///{tmp_path}/post-mortem.sqlite")
    other.write(pts)
    replay = FormulaRunner(other, cfg.formulas)
    for name in ("machine_power", "reconcile", "energy"):  # energy last: it integrates the others' power
        replay.replay(name, T0 - HOUR, T0 + 2 * HOUR)  # every window the points touch
    assert derived_points(other) == power
    assert derived_points(other, "energy") == energy
    other.close()


def test_reconcile_needs_a_main_meter() -> None:
    with pytest.raises(ConfigError, match=r"formulas\.reconcile\.main: name each site's main meter"):
        HubConfig.parse({"formulas": {"enabled": ["reconcile"]}})


def test_load_model_recovers_a_known_line_attributes_and_estimates(store: Store, tmp_path: Path) -> None:
    import random

    from hub.formulas.load_model import DAY_MS, fit_line

    rng = random.Random(3)
    day = T0 // DAY_MS * DAY_MS
    points: list[Point] = []
    for i in range(0, 24 * 60):  # a day of minutes
        t = day + i * 60_000 + 30_000
        db, web = rng.uniform(0, 4), rng.uniform(0, 2)
        points.append(Point(SeriesKey("lab", "web-01", "formula-power"), t, 0,
                            {"w": (80 + 35 * (db + web)) * (1 + rng.gauss(0, 0.01))}))
        points.append(Point(SeriesKey("lab", "web-01", "load-cpu-db"), t, 0, {"value": db}))
        points.append(Point(SeriesKey("lab", "web-01", "load-cpu-web"), t, 0, {"value": web}))
        points.append(Point(SeriesKey("lab", "web-02", "load-cpu-other"), t, 0, {"value": 2.0}))
    store.write(points)
    cfg = HubConfig.parse({
        "inventory": {"machines": [{"name": "web-01", "site": "lab", "sources": ["pdu-a3.outlet-1"]}]},
        "formulas": {"enabled": ["load_model"], "load_model": {"window_days": 1, "estimate": {"web-02": "web-01"}}}})
    assert FormulaRunner(store, cfg.formulas).replay("load_model", day, day + DAY_MS) > 0

    def at(device: str, channel: str, ts: int = day) -> float:
        return float(store.points(SeriesKey("lab", device, channel), ts, ts + 1, 1)[0].fields["w"])

    assert at("web-01", "formula-model-idle") == pytest.approx(80, rel=0.02)
    assert at("web-01", "formula-model-k") == pytest.approx(35, rel=0.02)
    assert 0 < at("web-01", "formula-model-rmse") < 3  # the 1 % noise
    t = day + 30_000
    first = {p.key.channel: float(p.fields.get("w", p.fields.get("value", 0))) for p in points if p.ts_ms == t}
    idle = at("web-01", "formula-model-idle")
    cores = first["load-cpu-db"] + first["load-cpu-web"]
    bucket = day  # the first minute's bucket holds that first reading
    assert at("web-01", "formula-group-db", bucket) == pytest.approx((first["formula-power"] - idle)
                                                                    * first["load-cpu-db"] / cores)
    assert at("web-01", "formula-group-idle", bucket) == pytest.approx(idle)
    assert at("web-02", "formula-estimate", bucket) == pytest.approx(80 + 35 * 2.0, rel=0.02)
    assert fit_line([1, 1, 1], [5, 6, 7]) is None  # no spread in load: no model

    streamed = open_store(f"sqlite:///{tmp_path}/stream.sqlite")  # the same points, noted as the hub stores them
    runner = FormulaRunner(streamed, cfg.formulas)
    for i in range(0, len(points), 1000):
        streamed.write(points[i:i + 1000])
        runner.note(points[i:i + 1000])
    runner.flush()
    assert derived_points(streamed) == derived_points(store)
    streamed.close()


def test_load_model_estimate_needs_a_known_machine() -> None:
    with pytest.raises(ConfigError, match=r"formulas\.load_model\.estimate\.x: 'nobody' is no machine"):
        HubConfig.parse({"formulas": {"enabled": ["load_model"], "load_model": {"estimate": {"x": "nobody"}}}})


def test_stopping_mid_flush_computes_each_window_once_and_never_two_at_a_time(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop's flush gives way to stop()'s: no window is computed twice, none by two threads at once (a hub of
    10,000 series once stopped while its loop was still flushing, and the two raced over the same rollup rows)."""
    from hub.formulas.base import Formula

    class Slow(Formula):
        name, window_ms = "slow", 60_000

        def __init__(self) -> None:
            self.lock, self.inside, self.most, self.done = threading.Lock(), 0, 0, []

        def is_input(self, key: SeriesKey) -> bool:
            return True

        def compute(self, store: Any, start_ms: int, inputs: set[SeriesKey]) -> list[Point]:
            with self.lock:
                self.inside += 1
                self.most = max(self.most, self.inside)
            time.sleep(0.05)
            with self.lock:
                self.inside -= 1
                self.done.append(start_ms)
            return []

    import hub.formulas.runner

    monkeypatch.setattr(hub.formulas.runner, "STOP_JOIN_S", 0.1)  # stop() gives up on the loop at once
    store = open_store(f"sqlite:///{tmp_path}/p.sqlite")
    slow = Slow()
    runner = FormulaRunner(store, [slow], every_s=0.05)
    key = SeriesKey("lab", "m", "power")
    # Forty windows, not neighbours (one run each): the loop's flush takes two seconds.
    runner.note([Point(key, T0 + i * 120_000, i + 1, {"w": 1.0}) for i in range(40)])
    runner.start()
    wait_for(lambda: slow.done, what="the loop's flush to begin")
    runner.stop()
    store.close()
    assert slow.most == 1
    assert sorted(slow.done) == sorted(set(slow.done)) and len(slow.done) == 40
