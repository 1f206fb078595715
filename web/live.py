"""Live points for `/api/v1/stream` and the `/blip` long-poll, read from MQTT the way `mosquitto_sub` would.

The web app is its own process; it sees a point as soon as the broker has it, without polling the store. Every
`/blip` waiter gets the same next point (blipserver's queue semantics), also when points come in quick succession.

It subscribes only to what a client waits for now: the topics of the series streamed or long-polled, or every data
topic while a stream wants them all (or more than MAX_TOPICS series). With nobody waiting it reads nothing: decoding
a 10,000-series site's messages for nobody cost the web app 0.3 core (issue 25).
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho

from telemetry import PayloadError, Point, TopicError, decode_payload, parse_data_topic, parse_series_id
from telemetry.config import MqttConfig
from telemetry.mqtt import close, connect_async, make_client, survive
from telemetry.topics import data_topic

log = logging.getLogger(__name__)

LISTENER_QUEUE_POINTS = 10_000
RECENT_PER_SERIES = 256
MAX_TOPICS = 1000  # past this many series wanted at once, one subscription to every data topic


@dataclass(eq=False)
class Listener:
    series: frozenset[str] | None  # None: every series
    points: queue.Queue[Point] = field(default_factory=lambda: queue.Queue(LISTENER_QUEUE_POINTS))
    dropped: bool = False  # set when the client stopped reading and its queue filled


class LiveFeed:
    def __init__(self, mqtt: MqttConfig | None) -> None:
        self.mqtt = mqtt
        self._cond = threading.Condition()
        self._gen: dict[str, int] = {}
        self._recent: dict[str, collections.deque[tuple[int, Point]]] = {}
        self._listeners: set[Listener] = set()
        self._client: paho.Client | None = None
        self._start_lock = threading.Lock()
        self._wanted: collections.Counter[str | None] = collections.Counter()  # series id (None: all) -> waiters
        self._subscribed: set[str] = set()  # the topic filters asked of the broker, again on every connection
        self._sub_lock = threading.Lock()

    def ensure_started(self) -> None:
        """Connect on first use, so an app that never streams never needs a broker."""
        with self._start_lock:
            if self._client is not None or self.mqtt is None:
                return
            client = make_client(self.mqtt, f"powerhub-web-{os.getpid()}-{id(self):x}")
            client.on_connect = self._on_connect
            client.on_message = survive(self._on_message, log)
            connect_async(client, self.mqtt)
            self._client = client

    def stop(self) -> None:
        if self._client is not None:
            close(self._client)
            self._client = None

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        with self._sub_lock:
            if self._subscribed:
                client.subscribe([(t, 0) for t in sorted(self._subscribed)])

    def _want(self, series: frozenset[str] | None, delta: int) -> None:
        """Count waiters per series, and subscribe to what is wanted now (and from what is not any more)."""
        with self._cond:
            for sid in series if series is not None else (None,):
                self._wanted[sid] += delta
                if self._wanted[sid] <= 0:
                    del self._wanted[sid]
            wanted = set(self._wanted)
        if self.mqtt is None:
            return  # no broker (web.live = false): nothing to subscribe to
        if None in wanted or len(wanted) > MAX_TOPICS:
            topics = {f"{self.mqtt.root}/data/#"}
        else:
            topics = {data_topic(self.mqtt.root, parse_series_id(sid)) for sid in wanted if sid is not None}
        with self._sub_lock:
            new, gone = topics - self._subscribed, self._subscribed - topics
            self._subscribed = topics
            if self._client is not None and self._client.is_connected():
                if new:
                    self._client.subscribe([(t, 0) for t in sorted(new)])
                if gone:
                    self._client.unsubscribe(sorted(gone))

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        assert self.mqtt is not None
        try:
            points = decode_payload(parse_data_topic(self.mqtt.root, msg.topic), bytes(msg.payload))
        except (TopicError, PayloadError):
            return  # the hub logs and counts bad messages; here they are simply not live
        self.feed(points)

    def feed(self, points: list[Point]) -> None:
        with self._cond:
            for p in points:
                sid = p.key.id
                gen = self._gen.get(sid, 0) + 1
                self._gen[sid] = gen
                self._recent.setdefault(sid, collections.deque(maxlen=RECENT_PER_SERIES)).append((gen, p))
            self._cond.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            for p in points:
                if listener.series is None or p.key.id in listener.series:
                    try:
                        listener.points.put_nowait(p)
                    except queue.Full:
                        listener.dropped = True
                        self.unlisten(listener)
                        break

    def wait_next(self, series_id: str, timeout_s: float | None) -> Point | None:
        """The next point of a series to arrive after this call, or None after `timeout_s`."""
        self.ensure_started()
        with self._cond:
            want = self._gen.get(series_id, 0) + 1
        self._want(frozenset([series_id]), 1)
        try:
            with self._cond:
                if not self._cond.wait_for(lambda: self._gen.get(series_id, 0) >= want, timeout_s):
                    return None
                for gen, p in self._recent[series_id]:
                    if gen == want:
                        return p
                return self._recent[series_id][0][1]  # we slept through RECENT_PER_SERIES points: the oldest kept
        finally:
            self._want(frozenset([series_id]), -1)

    def listen(self, series: frozenset[str] | None) -> Listener:
        self.ensure_started()
        listener = Listener(series)
        with self._cond:
            self._listeners.add(listener)
        self._want(series, 1)
        return listener

    def unlisten(self, listener: Listener) -> None:
        with self._cond:
            if listener not in self._listeners:
                return  # already gone: dropped for a full queue, then closed
            self._listeners.discard(listener)
        self._want(listener.series, -1)

    @property
    def clients(self) -> int:
        with self._cond:
            return len(self._listeners)
