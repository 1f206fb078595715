"""The web app's live feed against a real Mosquitto: it reads only the series a client waits for, and nothing when
nobody waits."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest

from telemetry import Point, SeriesKey
from telemetry.config import MqttConfig
from telemetry.topics import data_topic
from tests.peers import Publisher, wait_for
from web.live import Listener, LiveFeed

A = SeriesKey("lab", "pdu-a3", "outlet-1")
B = SeriesKey("lab", "pdu-a3", "outlet-2")


class Sender:
    """Points of one series at a time through the shared raw publisher, numbered so a test can tell the last."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher, self.seq = publisher, 0

    def send(self, key: SeriesKey) -> None:
        self.seq += 1
        point = Point(key, int(time.time() * 1000) + self.seq, self.seq, {"w": 1.0})
        self.publisher.send_points(key, [point])


@pytest.fixture
def feed(mqtt_cfg: MqttConfig) -> Iterator[LiveFeed]:
    live = LiveFeed(mqtt_cfg)
    yield live
    live.stop()


@pytest.fixture
def sender(mqtt_cfg: MqttConfig) -> Iterator[Sender]:
    publisher = Publisher(mqtt_cfg)
    yield Sender(publisher)
    publisher.close()


def receive(listener: Listener, sender: Sender, key: SeriesKey) -> Point:
    """Send `key` until the listener has a point of it: its subscription is in flight a moment after listen()."""
    def got() -> Point | None:
        sender.send(key)
        try:
            return listener.points.get(timeout=0.2)
        except queue.Empty:
            return None

    point: Point = wait_for(got, 10, f"a point of {key}")
    return point


def last_sent(listener: Listener, sender: Sender) -> Point:
    """The listener's point of the last message sent, skipping earlier ones still queued."""
    while True:
        p = listener.points.get(timeout=5)
        if p.seq == sender.seq:
            return p


def test_only_the_series_streamed_are_read_and_nothing_once_the_stream_ends(feed: LiveFeed, sender: Sender) -> None:
    one = feed.listen(frozenset({A.id}))
    receive(one, sender, A)
    sender.send(B)
    sender.send(A)
    assert last_sent(one, sender).key == A
    assert B.id not in feed._gen  # B came first and was not subscribed to: never even decoded
    feed.unlisten(one)
    assert not feed._subscribed
    two = feed.listen(frozenset({B.id}))
    receive(two, sender, B)  # the feed unsubscribed from A before it subscribed to B, on the same connection
    seen_a = feed._gen[A.id]
    sender.send(A)
    sender.send(B)
    assert last_sent(two, sender).key == B
    assert feed._gen[A.id] == seen_a  # A, sent before that B, was not delivered
    feed.unlisten(two)
    everything = feed.listen(None)
    assert receive(everything, sender, A).key == A
    feed.unlisten(everything)
    assert not feed._wanted and not feed._subscribed


def test_a_long_poll_subscribes_for_as_long_as_it_waits(feed: LiveFeed, sender: Sender) -> None:
    assert feed.wait_next(A.id, 0.3) is None  # nothing sent: it waited, subscribed, and gave up
    assert not feed._wanted and not feed._subscribed
    watcher = feed.listen(frozenset({B.id}))  # proves the connection and the subscription are up
    receive(watcher, sender, B)
    assert feed._subscribed == {data_topic(feed.mqtt.root, B)}  # type: ignore[union-attr]
    feed.unlisten(watcher)
