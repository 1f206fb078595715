"""The hub against a real Mosquitto and each store: what it stores, what it drops, and its persistent session."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hub.config import HubConfig
from hub.stores import Store
from hub.subscriber import Subscriber
from telemetry import MAX_PAYLOAD_BYTES, SeriesKey
from telemetry.config import ConfigError, MqttConfig
from telemetry.metrics import Metrics
from telemetry.mqtt import connect_async, make_client
from tests.peers import Publisher, wait_for

KEY = SeriesKey("lab", "mainmeter", "power")
T0 = 1_700_000_000_000


@pytest.fixture
def publisher(mqtt_cfg: MqttConfig) -> Iterator[Publisher]:
    p = Publisher(mqtt_cfg)
    yield p
    p.close()


def start_hub(mqtt_cfg: MqttConfig, store: Store, metrics: Metrics, client_id: str,
              batch_points: int = 5000) -> Subscriber:
    hub = Subscriber(mqtt_cfg, store, metrics, client_id, batch_points=batch_points, batch_age_s=0.05)
    hub.start()
    wait_for(hub.connected.is_set, what="the hub to connect")
    return hub


def point(seq: int, **extra: object) -> str:
    return json.dumps({"ts": T0 + seq * 1000, "seq": seq, "w": 3600.0, "ms": 1000, **extra})


def test_good_points_stored_bad_ones_dropped_and_counted(mqtt_cfg: MqttConfig, store: Store,
                                                         publisher: Publisher, mqtt_root: str) -> None:
    metrics = Metrics()
    hub = start_hub(mqtt_cfg, store, metrics, f"hub-{mqtt_root}")
    try:
        topic = "data/lab/mainmeter/power"
        publisher.send(topic, point(1))
        publisher.send(topic, "not json")
        publisher.send(topic, b"[" * 100_000 + b"]" * 100_000)  # too deep for Python's parser: dropped, hub goes on
        publisher.send(topic, json.dumps({"ts": T0, "w": 1.0}))
        publisher.send(topic, json.dumps({"ts": "yesterday", "seq": 2, "w": 1.0}))
        publisher.send(topic, b"[" + b" " * MAX_PAYLOAD_BYTES + b"]")
        publisher.send("data/lab/Main Meter/power", point(3))
        publisher.send("data/lab/mainmeter", point(4))
        publisher.send(topic, f"[{point(5)}, {point(6, vendor_extra=1.5)}]")
        publisher.send(topic, point(5))  # a retransmission: stored once
        wait_for(lambda: metrics.value("powerhub_points_stored_total") >= 4, what="the good points stored")
        got = store.points(KEY, T0, T0 + 10_000, 100)
        assert [p.seq for p in got] == [1, 5, 6]
        assert got[2].fields["vendor_extra"] == 1.5
        dropped = {r: metrics.value("powerhub_points_dropped_total", reason=r) for r in
                   ("json", "missing", "type", "oversized", "topic")}
        assert dropped == {"json": 2, "missing": 1, "type": 1, "oversized": 1, "topic": 2}
        assert "powerhub_points_dropped_total{reason=\"json\"} 2" in metrics.render()
    finally:
        hub.stop()


def test_values_no_store_can_hold_are_dropped_with_their_message_not_with_the_batch(
        mqtt_cfg: MqttConfig, store: Store, publisher: Publisher, mqtt_root: str) -> None:
    """A lone surrogate (valid JSON, not UTF-8), integers past int64 and one too large for a float: each message is
    dropped on its own, and the good points batched with them are stored. (They used to end the writer thread, or
    make InfluxDB refuse the whole batch.)"""
    metrics = Metrics()
    hub = start_hub(mqtt_cfg, store, metrics, f"hub-{mqtt_root}")
    try:
        topic = "data/lab/mainmeter/power"
        publisher.send(topic, point(1))
        publisher.send(topic, point(2).replace('"ms"', '"machine": "\\ud800", "ms"'))
        publisher.send(topic, point(3).replace('"seq": 3', f'"seq": {2**63}'))
        publisher.send(topic, point(4).replace('"ms": 1000', f'"ms": {2**63}'))
        publisher.send(topic, point(5).replace('"ms"', f'"vendor_extra": {10**400}, "ms"'))
        publisher.send(topic, point(6).replace('"ms"', '"note": "\\udc80", "ms"'))
        publisher.send(topic, point(7))
        wait_for(lambda: metrics.value("powerhub_points_stored_total") >= 2, what="the good points stored")
        assert [p.seq for p in store.points(KEY, T0, T0 + 10_000, 100)] == [1, 7]
        assert {r: metrics.value("powerhub_points_dropped_total", reason=r) for r in ("type", "range")} == \
            {"type": 2, "range": 3}
        assert hub.healthy()
    finally:
        hub.stop()


def test_persistent_session_keeps_points_while_the_hub_is_down(mqtt_cfg: MqttConfig, store: Store,
                                                              publisher: Publisher, mqtt_root: str) -> None:
    client_id = f"hub-{mqtt_root}"
    hub = start_hub(mqtt_cfg, store, Metrics(), client_id)
    hub.stop()
    for seq in range(1, 51):
        publisher.send("data/lab/mainmeter/power", point(seq))
    metrics = Metrics()
    hub = start_hub(mqtt_cfg, store, metrics, client_id)
    try:
        wait_for(lambda: metrics.value("powerhub_points_stored_total") >= 50, what="the queued points")
        assert [p.seq for p in store.points(KEY, T0, T0 + 100_000, 100)] == list(range(1, 51))
    finally:
        hub.stop()


def test_a_backlog_is_written_by_both_writers_stored_once_and_all_acknowledged(
        mqtt_cfg: MqttConfig, store: Store, publisher: Publisher, mqtt_root: str) -> None:
    """Batches of 50 points: the backlog keeps full batches waiting, so the second writer takes some while the
    first writes. Every point is stored once, and every message acknowledged: after a restart the broker resends
    nothing, only the one point published meanwhile arrives."""
    client_id = f"hub-{mqtt_root}"
    hub = start_hub(mqtt_cfg, store, Metrics(), client_id)
    hub.stop()
    topic = "data/lab/mainmeter/power"
    for first in range(1, 2001, 5):
        publisher.send(topic, "[" + ",".join(point(seq) for seq in range(first, first + 5)) + "]")
    metrics = Metrics()
    hub = start_hub(mqtt_cfg, store, metrics, client_id, batch_points=50)
    try:
        wait_for(lambda: metrics.value("powerhub_points_stored_total") >= 2000, 60, "the backlog stored")
        assert metrics.value("powerhub_store_batches_total", writer="2") > 0
    finally:
        hub.stop()
    assert [p.seq for p in store.points(KEY, T0, T0 + 3_000_000, 5000)] == list(range(1, 2001))
    publisher.send(topic, point(2001))
    metrics = Metrics()
    hub = start_hub(mqtt_cfg, store, metrics, client_id)
    try:
        wait_for(lambda: metrics.value("powerhub_points_stored_total") >= 1, what="the new point")
        assert metrics.value("powerhub_points_received_total") == 1
    finally:
        hub.stop()


def test_hub_marks_itself_subscribed_with_a_retained_message(mqtt_cfg: MqttConfig, store: Store,
                                                             mqtt_root: str) -> None:
    hub = start_hub(mqtt_cfg, store, Metrics(), f"hub-{mqtt_root}")
    watcher = make_client(mqtt_cfg, f"watch-{mqtt_root}")
    got: list[tuple[str, dict[str, object], bool]] = []
    watcher.on_message = lambda _c, _u, m: got.append((m.topic, json.loads(m.payload), m.retain))
    watcher.on_connect = lambda c, *_: c.subscribe(f"{mqtt_cfg.root}/hub/+", qos=1)
    try:
        wait_for(hub.marked.is_set, what="the hub's SUBACK")
        connect_async(watcher, mqtt_cfg)
        wait_for(lambda: got, what="the hub's marker")
        topic, doc, retained = got[0]
        assert topic == f"{mqtt_cfg.root}/hub/hub-{mqtt_root}" and retained  # there for agents that come later
        assert doc["state"] == "subscribed" and doc["topic"] == f"{mqtt_cfg.root}/data/#"
    finally:
        watcher.disconnect()
        watcher.loop_stop()
        hub.stop()


@pytest.mark.parametrize("client_id", ["hub/a", "hub+", "#", ""])
def test_a_hub_client_id_that_is_not_one_topic_level_is_a_config_error(client_id: str) -> None:
    with pytest.raises(ConfigError, match=r"^hub\.client_id: must be non-empty with no"):
        HubConfig.parse({"hub": {"client_id": client_id}})
