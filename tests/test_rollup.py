"""Rollups: `/history` answers aligned long ranges from the hub's minute and hour rows with the same buckets the raw
points give, and falls back to the raw points where the rollups cannot answer exactly."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from hub.config import HubConfig
from hub.formulas import FormulaRunner
from hub.formulas.base import NOTHING_PENDING, PENDING_FIELD
from hub.formulas.rollup import Rollup, pending_key, rollup_key
from hub.formulas.runner import _runs
from hub.run import start_hub
from hub.stores import Store
from telemetry import Point, SeriesKey
from telemetry.metrics import Metrics
from telemetry.timeunits import DAY_MS, now_ms
from tests.peers import Publisher, wait_for
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


class Unlimited(Rollup):
    min_interval_s = 0.0  # a window is computed again at the next flush: this test's time is not the hub's


def test_live_minutes_make_their_hour_with_the_minute_rows_stored_before(store: Store) -> None:
    key = SeriesKey("lab", "live", "power")
    runner = FormulaRunner(store, [Unlimited()])

    def arrive(points: list[Point]) -> int:
        store.write(points)
        runner.note(points)
        return runner.flush()

    points = [Point(key, T0 + i * 1000, i + 1, {"w": 50.0 + (i * 7919 % 1000) / 3}) for i in range(3600)]
    assert arrive(points[:1800]) == 30 + 1  # its minutes' rows and the hour's
    assert arrive(points[1800:]) == 30 + 1  # the later minutes' rows, and the hour's again from all 60
    assert arrive([Point(key, T0 + 500, 9999, {"w": 5000.0})]) == 1 + 1  # a late point: its minute, its hour
    (hour,) = store.rollup_buckets(rollup_key(key, "1h"), T0, T0 + HOUR, HOUR)
    (raw,) = store.buckets(key, T0, T0 + HOUR, HOUR)
    assert (hour.count, hour.min, hour.max) == (raw.count, raw.min, raw.max) == (3601, 50.0, 5000.0)
    assert hour.mean == pytest.approx(raw.mean)


def test_a_backlog_leaves_only_its_newest_minute_rate_limited(store: Store) -> None:
    """The runner remembers when it computed each run's newest window only, so a long backlog does not fill its
    memory with one entry per minute; a late point in an older minute is computed at the next flush."""
    key = SeriesKey("lab", "backlog", "power")
    runner = FormulaRunner(store, [Rollup()])
    points = [Point(key, T0 + i * 10_000, i + 1, {"w": 100.0}) for i in range(3 * 24 * 360)]  # three days
    store.write(points)
    runner.note(points)
    assert runner.flush() == 3 * 24 * 61
    assert len(runner._ran) == 3  # runs of a day at most
    runner.note([points[-1]])
    assert runner.flush() == 0  # the newest minute again within 30 s: not yet
    runner.note([points[0]])
    assert runner.flush() == 1 + 1  # an older minute: now, with its hour


def test_stopping_computes_what_the_rate_limit_held_back(store: Store) -> None:
    """A hub that stops leaves no rollup behind its points: the minute it last computed is computed again."""
    key = SeriesKey("lab", "stopping", "power")
    runner = FormulaRunner(store, [Rollup()], every_s=3600)  # flushed by this test and by `stop` only
    runner.start()
    first, late = Point(key, T0, 1, {"w": 100.0}), Point(key, T0 + 1000, 2, {"w": 300.0})
    for point in (first, late):
        store.write([point])
        runner.note([point])
        runner.flush()  # the second is held back: its minute was computed less than 30 s ago
    assert [b.count for b in store.rollup_buckets(rollup_key(key, "1m"), T0, T0 + HOUR, HOUR)] == [1]
    runner.stop()
    for period in ("1m", "1h"):
        (row,) = store.rollup_buckets(rollup_key(key, period), T0, T0 + HOUR, HOUR)
        assert (row.count, row.max) == (2, 300.0)


def test_due_windows_run_together_only_when_neighbours_with_the_same_inputs() -> None:
    other = SeriesKey("lab", "node18", "power")
    a, b = {SAMPLED}, {SAMPLED, other}
    w = Rollup.window_ms
    due = {(0, 0): a, (0, w): a, (0, 2 * w): a, (0, 4 * w): a, (0, 5 * w): b, (1, 0): a, (1, w): a}
    assert _runs(due, [Rollup(), Rollup()]) == [
        (0, [0, w, 2 * w], a), (0, [4 * w], a), (0, [5 * w], b), (1, [0, w], a)]
    day = {(0, i * w): a for i in range(30 * HOUR // w)}
    assert [len(starts) * w for _, starts, _ in _runs(day, [Rollup()])] == [24 * HOUR, 6 * HOUR]


def test_history_never_counts_fewer_points_than_were_stored_while_rollups_catch_up(
        mqtt_doc: dict[str, Any], store_url: str, mqtt_root: str) -> None:
    """A burst of an old backlog through a real hub: every /history answer during the catch-up counts at least the
    raw points stored before it was asked, and never fewer than the answer before (issue: 127,109, then 127,101)."""
    doc = {"mqtt": mqtt_doc, "hub": {"client_id": f"hub-{mqtt_root}", "batch_age_s": 0.05},
           "store": {"url": store_url}, "formulas": {"enabled": ["rollup"]}}
    metrics = Metrics()
    hub = start_hub(HubConfig.parse(doc), metrics)
    assert hub.formulas is not None
    hub.formulas.every_s = 0.2
    wait_for(hub.connected.is_set, what="the hub to connect")
    key = SeriesKey("lab", "burst", "power")
    start = (now_ms() - 2 * DAY_MS) // HOUR * HOUR  # two days old: a backlog from an agent's outbox
    n, per_message = 60_000, 1000
    end = start + 3 * HOUR
    points = [Point(key, start + i * 150, i + 1, {"w": 100.0 + i % 50}) for i in range(n)]
    raw = Publisher(hub.mqtt)

    def burst() -> None:
        for i in range(0, n, per_message):
            raw.send("data/lab/burst/power", json.dumps([p.to_wire() for p in points[i:i + per_message]]))
            time.sleep(0.03)

    sender = threading.Thread(target=burst, daemon=True)
    client = create_app({"store": {"url": store_url}, "web": {"live": False}}).test_client()
    answers, lagging = [], 0
    try:
        sender.start()
        wait_for(lambda: hub.store.points(key, start, end, 1), what="the burst's first points")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            stored = sum(b.count for b in hub.store.buckets(key, start, end, end - start, origin_ms=start))
            rolled = sum(b.count for b in hub.store.rollup_buckets(rollup_key(key, "1h"), start, end, HOUR))
            total = sum(b["count"] for b in history(client, key, f"from={start}&to={end}&step={HOUR}"))
            assert total >= stored, (total, stored, rolled)  # never less than was stored before the request
            assert not answers or total >= answers[-1], [*answers[-3:], total]  # never going backwards
            answers.append(total)
            lagging += 0 < rolled < stored  # the rollups were behind the raw points: what this test is about
            if total == n and rolled == n and not sender.is_alive():
                break
            time.sleep(0.05)
        assert answers[-1] == n and lagging > 0, (answers[-1], lagging)
        # Caught up, the mark is cleared and the rollups answer again: after the rate limit at the latest, when a
        # window computed while its last points were being noted is computed once more.
        wait_for(lambda: newest_mark(hub.store, key) == NOTHING_PENDING, timeout_s=60, what="the mark cleared")
    finally:
        sender.join(30)
        raw.close()
        hub.stop()
        hub.store.close()


def test_live_minutes_come_from_the_raw_points_until_they_settle(store: Store, store_url: str) -> None:
    key = SeriesKey("lab", "live", "power")
    start = now_ms() // HOUR * HOUR - HOUR
    store.write([Point(key, start + i * 1000, i + 1, {"w": 50.0}) for i in range((now_ms() - start) // 1000 - 30)])
    FormulaRunner(store, [Rollup()]).replay("rollup", start, now_ms())
    recent = now_ms() - 25_000
    store.write([Point(key, recent + i * 100, 10**6 + i, {"w": 70.0}) for i in range(20)])  # not rolled up yet
    client = create_app({"store": {"url": store_url}, "web": {"live": False}}).test_client()
    to = now_ms()
    body = history(client, key, f"from={start}&to={to}&step=60000")
    raw = store.buckets(key, start, to, 60_000)
    assert [(b["ts"], b["count"]) for b in body] == [(b.start_ms, b.count) for b in raw]
    assert body[-1]["max_w"] == 70.0


def newest_mark(store: Store, key: SeriesKey) -> float | None:
    mark = store.points(pending_key(key), 0, now_ms() + DAY_MS, 1, newest=True)
    return float(mark[0].fields[PENDING_FIELD]) if mark else None


def test_old_points_are_marked_before_they_are_stored_and_cleared_once_rolled_up(store: Store) -> None:
    runner = FormulaRunner(store, [Rollup()])
    key = SeriesKey("lab", "late", "power")
    old = (now_ms() - DAY_MS) // HOUR * HOUR
    live = [Point(key, now_ms() - 1000, 1, {"w": 1.0})]
    assert runner.expect(live) == []  # live points cost no mark: nobody trusts their minute yet
    late = [Point(key, old + 61_000 + i, 2 + i, {"w": 5.0}) for i in range(3)]
    expected = runner.expect(late)
    runner.mark_expected(expected)
    assert newest_mark(store, key) == old + 60_000  # said before the points land
    store.write(late)
    runner.note(late)
    runner.release(expected)
    runner.flush()
    assert newest_mark(store, key) == NOTHING_PENDING
    hour = store.rollup_buckets(rollup_key(key, "1h"), old, old + HOUR, HOUR)
    assert [b.count for b in hour] == [3]


def test_a_replay_clears_the_mark_a_killed_hub_left(store: Store) -> None:
    key = SeriesKey("lab", "orphan", "power")
    old = (now_ms() - DAY_MS) // HOUR * HOUR
    pts = [Point(key, old + i * 1000, i + 1, {"w": 5.0}) for i in range(120)]
    hub = FormulaRunner(store, [Rollup()])
    hub.mark_expected(hub.expect(pts))
    store.write(pts)  # and the hub dies before its formulas run
    assert newest_mark(store, key) == old
    FormulaRunner(store, [Rollup()]).replay("rollup", old, old + 10 * 60_000)
    assert newest_mark(store, key) == old + 10 * 60_000  # covered up to where the replay ended
    FormulaRunner(store, [Rollup()]).replay("rollup", old, now_ms())
    assert newest_mark(store, key) == NOTHING_PENDING


def test_a_rollup_row_seen_only_in_part_is_left_out_not_a_crash(store: Store) -> None:
    """InfluxDB keeps each field apart, so a query racing a write can see a row's `n` before its `sum_w` (a hub
    stopping mid-write once died of it): such a row is left out, as a row not written yet would be."""
    minute = rollup_key(SAMPLED, "1m")
    store.write([Point(minute, T0, 1, {"n": 60.0, "sum_w": 6000.0, "min_w": 100.0, "max_w": 100.0}),
                 Point(minute, T0 + 60_000, 2, {"n": 60.0, "min_w": 90.0, "max_w": 110.0}),  # no sum_w yet
                 Point(minute, T0 + 120_000, 3, {"n": 60.0, "sum_w": 6000.0, "min_w": 90.0})])  # no max_w yet
    (bucket,) = store.rollup_buckets(minute, T0, T0 + 180_000, 60_000)
    assert (bucket.start_ms, bucket.count, bucket.mean) == (T0, 60, 100.0)
