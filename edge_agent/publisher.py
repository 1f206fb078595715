"""Drain the outbox to MQTT in order, QoS 1; a point leaves the outbox only when the broker's PUBACK names it.

One thread owns the in-flight map. paho calls `on_publish` while holding its own lock, so that callback only
queues the acknowledged mid; taking our lock there could deadlock against a `publish()` in progress.

A PUBACK only says the broker took the message. Two kinds do not count as delivered; their points stay in the outbox
and are sent again (the store keeps a resent point once); undelivered ones one message at a time until one is
delivered, so that while no hub subscribes the outbox is not sent round every second:
- MQTT 5's "no matching subscribers": no hub session holds a subscription (say, a broker that lost its sessions);
- with `wait_for_hub`, one that came on a connection before any hub's retained "subscribed" marker did. The broker
  handles one client's packets in order, so a PUBACK after the marker is for a message that met the hub's
  subscription. This also covers a web app's live subscription answering for an absent hub, and MQTT 3.1.1.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

import paho.mqtt.client as paho

from edge_agent.outbox import Outbox, OutboxFull, WireRow
from telemetry import data_topic, parse_series_id, status_topic
from telemetry.config import MqttConfig
from telemetry.mqtt import (
    close,
    connect_async,
    is_hub_marker,
    make_client,
    matched_no_subscriber,
    status_payload,
    survive,
)
from telemetry.sdnotify import Heartbeat
from telemetry.topics import hub_filter

log = logging.getLogger(__name__)

MAX_INFLIGHT_MESSAGES = 1000  # far below paho's silent 65,535 limit
MAX_POINTS_PER_MESSAGE = 500
PEEK_POINTS = 2000
RETRY_AFTER_REFUSAL_S = 5.0
RETRY_UNDELIVERED_S = 1.0
EARLY_S = 5.0  # a PUBACK that raced ahead of its publish() returning is this fresh at most
WAIT_FOR_HUB_LOG_S = 10.0

# What an acknowledgement says about a message's points.
DELIVERED, REFUSED, UNDELIVERED = "delivered", "refused", "undelivered"


def group_by_series(rows: list[WireRow], limit: int) -> list[list[WireRow]]:
    """Runs of consecutive points of one series, at most `limit` each: order across series is kept."""
    groups: list[list[WireRow]] = []
    for row in rows:
        if groups and groups[-1][0][1] == row[1] and len(groups[-1]) < limit:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def payload(group: list[WireRow]) -> bytes:
    """One point as an object, several (all of one series) as an array: `telemetry.encode_points`' format."""
    if len(group) == 1:
        return group[0][2].encode()
    return ("[" + ",".join(row[2] for row in group) + "]").encode()


class Publisher:
    def __init__(self, cfg: MqttConfig, site: str, name: str, outbox: Outbox, version: str,
                 now_ms: Callable[[], int], devices: Callable[[], list[str]] = list,
                 wait_for_hub: bool = False) -> None:
        self.cfg, self.outbox, self.version = cfg, outbox, version
        self.wait_for_hub = wait_for_hub
        self._now_ms = now_ms
        self._devices = devices
        self.status_topic = status_topic(cfg.root, site, name)
        self._topics: dict[str, str] = {}  # series id -> data topic
        self.client = make_client(cfg, client_id=f"powerhub-agent-{site}-{name}")
        self._set_will()
        self.client.on_pre_connect = lambda _c, _u: self._set_will()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = survive(self._on_message, log)
        self.counters: Counter[str] = Counter()
        self._connected = threading.Event()
        self._hub_seen = threading.Event()  # on this connection, a hub's "subscribed" marker arrived
        self._connected_at = 0.0
        self._hold_until = 0.0  # after a refused or undelivered message, publish again only from then
        # After an undelivered one, one message at a time until one is delivered: with no hub, sending the outbox
        # round again every second (up to the in-flight window, 1000 messages) would only be answered "no one".
        self._probing = False
        self._undelivered_logged = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._acks: collections.deque[tuple[int, str]] = collections.deque()
        self._inflight: dict[int, list[int]] = {}
        # PUBACKs that came before `_publish_more` recorded their mid: (outcome, when). Status messages' PUBACKs
        # land here too and are never claimed; a data message may claim only a fresh one, since mids are reused.
        self._early: dict[int, tuple[str, float]] = {}
        self._cursor = 0
        self._unsettled: list[int] = []  # acknowledged by the broker, not yet deleted from the outbox
        self._thread = threading.Thread(target=self._drain_loop, name="publisher", daemon=True)
        self.heartbeat = Heartbeat()

    def start(self) -> None:
        connect_async(self.client, self.cfg)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Flush what can be flushed, say offline, disconnect. Unacknowledged points stay in the outbox."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        if self._connected.is_set():
            info = self.client.publish(self.status_topic, self._status("offline"), qos=1, retain=True)
            if info.rc == paho.MQTT_ERR_SUCCESS:
                info.wait_for_publish(timeout_s)
        close(self.client)

    def healthy(self) -> bool:
        # The loop turns every 0.5 s at most, unless an outbox call or a publish hangs: a minute is wedged.
        return self._thread.is_alive() and self.heartbeat.fresh(60.0)

    def _status(self, state: str) -> bytes:
        return status_payload(state, self._now_ms(), self.version, self._devices())

    def _set_will(self) -> None:
        """The last will for the next connection: "offline", stamped now (so no older than that connection) and
        with the devices known now. The broker keeps the will it got with CONNECT, so this runs before each one
        (paho's on_pre_connect); a subscriber that reads only the retained status then still sees whose devices
        went quiet, and roughly since when, where a will fixed at start said `ts` 0 and no devices."""
        self.client.will_set(self.status_topic, self._status("offline"), qos=1, retain=True)

    def announce(self) -> None:
        """Publish the online status again: a device appeared, and the hub should know whose it is."""
        self._set_will()  # for the next connection: the broker holds this one's will as it was
        if self._connected.is_set():
            self.client.publish(self.status_topic, self._status("online"), qos=1, retain=True)

    def _on_connect(self, client: paho.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT broker refused the connection: %s", reason)
            self.counters["connect_refused"] += 1
            return
        log.info("connected to MQTT broker %s:%d", self.cfg.host, self.cfg.port)
        client.publish(self.status_topic, self._status("online"), qos=1, retain=True)
        if self.wait_for_hub:
            client.subscribe(hub_filter(self.cfg.root), qos=1)
        self._connected_at = time.monotonic()
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, _c: paho.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if self._connected.is_set() and not self._stop.is_set():
            log.warning("disconnected from MQTT broker (%s); reconnecting", reason)
        self._hub_seen.clear()  # the next connection may be to a broker that lost the hub's session
        self._connected.clear()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        if not self._hub_seen.is_set() and is_hub_marker(bytes(msg.payload)):
            log.info("%s: a hub is subscribed; publishing", msg.topic)
            self._hub_seen.set()
            self._wake.set()

    def _on_publish(self, _c: paho.Client, _u: object, mid: int, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            outcome = REFUSED
        elif matched_no_subscriber(reason) or (self.wait_for_hub and not self._hub_seen.is_set()):
            outcome = UNDELIVERED
        else:
            outcome = DELIVERED
        self._acks.append((mid, outcome))
        self._wake.set()

    def _may_publish(self) -> bool:
        if not self._connected.is_set() or time.monotonic() < self._hold_until:
            return False
        if self.wait_for_hub and not self._hub_seen.is_set():
            waited_s = time.monotonic() - self._connected_at
            if waited_s >= WAIT_FOR_HUB_LOG_S and not self._undelivered_logged:
                log.warning("connected for %.0f s and no hub has marked itself subscribed on %s: holding %d points",
                            waited_s, hub_filter(self.cfg.root), len(self.outbox))
                self._undelivered_logged = True
            return False
        return True

    def _drain_loop(self) -> None:
        while not self._stop.is_set():
            self.heartbeat.beat()
            self._wake.wait(0.5)
            self._wake.clear()
            self._settle_acks()
            if self._may_publish():
                self._publish_more()
        # Stopping: give what is in flight a moment to be acknowledged, so it is not sent twice after a restart.
        deadline = time.monotonic() + 2.0
        while self._inflight and self._connected.is_set() and time.monotonic() < deadline:
            self._wake.wait(0.1)
            self._wake.clear()
            self._settle_acks()

    def _settle_acks(self) -> None:
        while self._acks:
            mid, outcome = self._acks.popleft()
            seqs = self._inflight.pop(mid, None)
            if seqs is None:
                if len(self._early) > 1000:
                    self._early = {m: e for m, e in self._early.items() if time.monotonic() - e[1] < EARLY_S}
                self._early[mid] = (outcome, time.monotonic())
                continue
            self._settle(seqs, outcome)

    def _settle(self, seqs: list[int], outcome: str) -> None:
        # A refusal (an ACL, say) may be of this topic alone: the others go on as before, after the pause.
        self._probing = outcome == UNDELIVERED
        if outcome == DELIVERED:
            if self._undelivered_logged:
                log.info("points reach a hub again")
                self._undelivered_logged = False
            self._unsettled.extend(seqs)
            try:
                self.outbox.ack(self._unsettled)
            except OutboxFull as exc:
                # The broker has them; the outbox cannot delete them yet (full disk). Try again on the next ack;
                # after a restart they would be sent again, which the store absorbs (same series and ts).
                self.counters["ack_delete_failures"] += 1
                log.warning("outbox cannot record %d acknowledged points yet: %s", len(self._unsettled), exc)
                return
            self.counters["points_acked"] += len(self._unsettled)
            self._unsettled = []
            return
        # Sent again from the first of them; what is still in flight after them may arrive twice, stored once.
        self._cursor = min(self._cursor, seqs[0] - 1)
        if outcome == REFUSED:
            log.error("broker refused %d points (seq %d..%d): keeping them, retrying", len(seqs), seqs[0], seqs[-1])
            self.counters["points_refused"] += len(seqs)
            self._hold_until = time.monotonic() + RETRY_AFTER_REFUSAL_S
            return
        if not self._undelivered_logged:
            log.warning("broker says no hub took %d points (seq %d..%d): keeping them, retrying",
                        len(seqs), seqs[0], seqs[-1])
            self._undelivered_logged = True
        self.counters["points_undelivered"] += len(seqs)
        self._hold_until = time.monotonic() + RETRY_UNDELIVERED_S

    def _window(self) -> int:
        return 1 if self._probing else MAX_INFLIGHT_MESSAGES

    def _topic(self, series_id: str) -> str:
        if series_id not in self._topics:
            self._topics[series_id] = data_topic(self.cfg.root, parse_series_id(series_id))
        return self._topics[series_id]

    def _publish_more(self) -> None:
        while len(self._inflight) < self._window() and not self._stop.is_set():
            batch = self.outbox.peek_wire(PEEK_POINTS, after_seq=self._cursor)
            if not batch:
                return
            for group in group_by_series(batch, MAX_POINTS_PER_MESSAGE):
                info = self.client.publish(self._topic(group[0][1]), payload(group), qos=1)
                if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                    log.warning("paho refused a publish (rc %s); will retry", info.rc)
                    return
                seqs = [row[0] for row in group]
                self._cursor = seqs[-1]
                early = self._early.pop(info.mid, None)
                if early is None or time.monotonic() - early[1] > EARLY_S:
                    self._inflight[info.mid] = seqs
                else:
                    self._settle(seqs, early[0])
                self.counters["messages_sent"] += 1
                if len(self._inflight) >= self._window():
                    return
            self._settle_acks()
