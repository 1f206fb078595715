"""Live points for `/api/v1/stream` and the `/blip` long-poll, read from MQTT the way `mosquitto_sub` would.

The web app is its own process; it sees a point as soon as the broker has it, without polling the store. Every
`/blip` waiter gets the same next point (blipserver's queue semantics), also when points come in quick succession.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from dataclasses import dataclass, field

import paho.mqtt.client as paho

from telemetry import PayloadError, Point, TopicError, decode_payload, parse_data_topic
from telemetry.config import MqttConfig
from telemetry.mqtt import close, connect_async, make_client, survive

log = logging.getLogger(__name__)

LISTENER_QUEUE_POINTS = 10_000
RECENT_PER_SERIES = 256


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

    def ensure_started(self) -> None:
        """Connect on first use, so an app that never streams never needs a broker."""
        with self._start_lock:
            if self._client is not None or self.mqtt is None:
                return
            client = make_client(self.mqtt, f"powerhub-web-{os.getpid()}-{id(self):x}")
            topic = f"{self.mqtt.root}/data/#"
            client.on_connect = lambda c, *_: c.subscribe(topic, qos=0)
            client.on_message = survive(self._on_message, log)
            connect_async(client, self.mqtt)
            self._client = client

    def stop(self) -> None:
        if self._client is not None:
            close(self._client)
            self._client = None

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
            if not self._cond.wait_for(lambda: self._gen.get(series_id, 0) >= want, timeout_s):
                return None
            for gen, p in self._recent[series_id]:
                if gen == want:
                    return p
            return self._recent[series_id][0][1]  # we slept through RECENT_PER_SERIES points: the oldest kept

    def listen(self, series: frozenset[str] | None) -> Listener:
        self.ensure_started()
        listener = Listener(series)
        with self._cond:
            self._listeners.add(listener)
        return listener

    def unlisten(self, listener: Listener) -> None:
        with self._cond:
            self._listeners.discard(listener)

    @property
    def clients(self) -> int:
        with self._cond:
            return len(self._listeners)
