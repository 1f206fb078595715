"""Rollups: `/history` answers aligned long ranges from the hub's minute and hour rows with the same buckets the raw
points give, and falls back to the raw points where the rollups cannot answer exactly."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from hub.formulas import FormulaRunner
from hub.formulas.rollup import Rollup, rollup_key
from hub.formulas.runner import _runs
from hub.stores import Store
from telemetry import Point, SeriesKey
from web import create_app

HOUR = 3_600_000
T0 = 1_700_000_000_000 // HOUR * HOUR
SAMPLED, BLINKS = SeriesKey("lab", "node17", "power"), SeriesKey("lab", "mainmeter", "power")


@pytest.fixture
def client(store: Store, store_url: str) -> FlaskClient:
    store.write([Point(SAMPLED, T0 + i * 1000, i + 1, {"w": 100.0 + i % 37}) for i in range(3 * 3600)])
    store.write([Point(BLINKS, T0 + 500 + i * 2000, i + 1, {"w": 1800.0, "ms": 2000}) for i in range(3 * 1800)])
    assert FormulaRunner(store, [Rollup()]).replay("rollup", T0, T0 + 3 * HOUR) > 0
    return create_app({"store": {"url": store_url}, "web": {"live": False}}).test_client()


def history(client: FlaskClient, key: SeriesKey, query: str) -> list[dict[str, float]]:
    resp = client.get(f"/api/v1/series/{key.id}/history?{query}")
    assert resp.status_code == 200, resp.data
    return resp.get_json()


@pytest.mark.parametrize("key", [SAMPLED, BLINKS])
@pytest.mark.parametrize("step", [HOUR, 600_000, 60_000])
def test_rollups_give_the_raw_answer(client: FlaskClient, store: Store, key: SeriesKey, step: int) -> None:
    rolled = history(client, key, f"from={T0}&to={T0 + 3 * HOUR}&step={step}")
    raw = store.buckets(key, T0, T0 + 3 * HOUR, step)
    assert len(rolled) == len(raw) == 3 * HOUR // step
    for r, b in zip(rolled, raw, strict=True):
        assert (r["ts"], r["count"], r["min_w"], r["max_w"]) == (b.start_ms, b.count, b.min, b.max)
        assert r["mean_w"] == pytest.approx(b.mean)
    if key == BLINKS:
        assert rolled[0]["wh"] == pytest.approx(1800.0 * step / HOUR)  # the blinks' exact energy


@pytest.mark.parametrize("with_ms", [False, True])
def test_the_hour_rows_made_from_the_minute_rows_hold_the_raw_hours(store: Store, with_ms: bool) -> None:
    """Values and intervals that wander, so that each minute's min, max and sums differ from its hour's."""
    key = SeriesKey("lab", "wander", "power")
    store.write([Point(key, T0 + i * 1000 + i % 7, i + 1, {"w": 50.0 + (i * 7919 % 1000) / 3,
                                                           **({"ms": 900 + i * 31 % 777} if with_ms else {})})
                 for i in range(3 * 3600)])
    assert FormulaRunner(store, [Rollup()]).replay("rollup", T0, T0 + 3 * HOUR) > 0
    rows = store.rollup_buckets(rollup_key(key, "1h"), T0, T0 + 3 * HOUR, HOUR)
    raw = store.buckets(key, T0, T0 + 3 * HOUR, HOUR)
    assert len(raw) == 3
    assert [(b.start_ms, b.count, b.min, b.max, b.sum_ms, b.min_ms, b.max_ms) for b in rows] == \
        [(b.start_ms, b.count, b.min, b.max, b.sum_ms, b.min_ms, b.max_ms) for b in raw]
    assert [b.mean for b in rows] == pytest.approx([b.mean for b in raw])
    assert [b.blink_wh for b in rows] == ([pytest.approx(b.blink_wh) for b in raw] if with_ms else [None] * 3)


def test_history_uses_the_rollups(client: FlaskClient, store: Store) -> None:
    store.write([Point(SAMPLED, T0 + 500, 99_999, {"w": 1e6})])  # stored, but no rollup has seen it yet
    rolled = history(client, SAMPLED, f"from={T0}&to={T0 + HOUR}&step={HOUR}")
    raw = history(client, SAMPLED, f"from={T0}&to={T0 + HOUR}&step={HOUR + 1}")
    assert rolled[0]["max_w"] < 1e6 <= raw[0]["max_w"]


def test_auto_step_is_whole_minutes_or_hours(client: FlaskClient) -> None:
    body = history(client, SAMPLED, f"from={T0}&to={T0 + 3 * HOUR}&points=100")
    assert {b["ts"] % 120_000 for b in body} == {0} and len(body) == 90  # 108 s rounds up to 2 minutes


def test_rollup_series_are_not_listed(client: FlaskClient) -> None:
    ids = [s["id"] for s in client.get("/api/v1/series").get_json()]
    assert ids == sorted([SAMPLED.id, BLINKS.id])


def test_a_backlog_noted_at_once_rolls_up_as_a_replay_does(store: Store, store_url: str) -> None:
    """A hub storing a day and a half of backlog at once computes its hours as runs (a query per series and
    period for up to a day, not per hour): the rows are the ones `powerhub formula rollup` writes."""
    backlog = [Point(SAMPLED, T0 + i * 10_000, i + 1, {"w": 100.0 + i % 37}) for i in range(36 * 360)]
    store.write(backlog)
    runner = FormulaRunner(store, [Rollup()])
    runner.note(backlog)
    streamed = runner.flush()
    rows = {(p.key.id, p.ts_ms): p.fields for k in (rollup_key(SAMPLED, "1m"), rollup_key(SAMPLED, "1h"))
            for p in store.points(k, T0, T0 + 36 * HOUR, 10_000)}
    assert streamed == len(rows) == 36 * 60 + 36
    assert FormulaRunner(store, [Rollup()]).replay("rollup", T0, T0 + 36 * HOUR) == streamed
    again = {(p.key.id, p.ts_ms): p.fields for k in (rollup_key(SAMPLED, "1m"), rollup_key(SAMPLED, "1h"))
             for p in store.points(k, T0, T0 + 36 * HOUR, 10_000)}
    assert again == rows


def test_due_windows_run_together_only_when_neighbours_with_the_same_inputs() -> None:
    other = SeriesKey("lab", "node18", "power")
    a, b = {SAMPLED}, {SAMPLED, other}
    due = {(0, 0): a, (0, HOUR): a, (0, 2 * HOUR): a, (0, 4 * HOUR): a, (0, 5 * HOUR): b,
           (1, 0): a, (1, HOUR): a}
    assert _runs(due, [Rollup(), Rollup()]) == [
        (0, [0, HOUR, 2 * HOUR], a), (0, [4 * HOUR], a), (0, [5 * HOUR], b), (1, [0, HOUR], a)]
    day = {(0, h * HOUR): a for h in range(30)}
    assert [len(starts) for _, starts, _ in _runs(day, [Rollup()])] == [24, 6]
