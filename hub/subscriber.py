"""Subscribe to `{root}/data/#` with a persistent session; store; acknowledge only what is committed.

paho's network thread decodes each message and hands it over (`hub/handoff.py`, bounded by points: a full hand-off
stops paho reading, which is our back-pressure). A writer thread takes batches, writes them, then sends the PUBACKs.
A second writer takes a batch only when a full one waits while the first writes: then the store's time and ours
overlap (arrays of points, a backlog), and with one point per message it stays out of paho's way. PUBACKs go out in
the order the messages came, whichever writer stores first. While the store is down nothing is acknowledged, so the
broker keeps the messages for us.
"""

from __future__ import annotations

import logging
import threading
import time

import orjson
import paho.mqtt.client as paho
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hub.agents import AgentBook
from hub.alerts import AlertsConfig, open_engine
from hub.formulas import FormulaRunner
from hub.formulas.runner import Expected
from hub.handoff import Batch, BatchLimits, Handoff, Message
from hub.home_assistant import HomeAssistant
from hub.stores import Store, StoreRejected, StoreUnavailable
from telemetry import PayloadError, Point, TopicError, decode_payload, parse_data_topic
from telemetry.config import MqttConfig
from telemetry.metrics import Metrics
from telemetry.mqtt import close, connect_async, hub_marker_payload, make_client, survive
from telemetry.payload import parse_json
from telemetry.sdnotify import Heartbeat
from telemetry.topics import hub_topic

log = logging.getLogger(__name__)

RETRY_MAX_S = 30.0
# Messages the broker may have in flight to us (MQTT 5 Receive Maximum). What the hub holds in memory is bounded by
# points (the hand-off and the batch being written); the rest of this window waits in the socket.
RECEIVE_MAXIMUM = 1000
# A batch is written before it is full or old when it holds half of the broker's window (it goes on sending the
# other half meanwhile), or when nothing came for QUIET_S (the window is used up, or a 3.1.1 broker's smaller one).
FLUSH_MESSAGES = RECEIVE_MAXIMUM // 2
QUIET_S = 0.01


def parse_json_fast(payload: bytes) -> object:
    """orjson's parse: a third of json's time (0.16 µs a point instead of 0.54), and the hub parses every point.
    What orjson refuses is parsed by json, so that a payload is judged as `parse_json` judges it: json takes NaN, a
    byte order mark, lone surrogates and integers past 64 bits, which `decode_payload` then refuses with its reason.
    (orjson's one leniency: it makes a float of an integer past 64 bits, so a `seq` of 2**64 is refused as `type`.)
    orjson is imported here, by the hub only: it would add 2.7 MB to the agent."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return parse_json(payload)


class Subscriber:
    def __init__(self, mqtt: MqttConfig, store: Store, metrics: Metrics, client_id: str,
                 share_group: str | None = None, batch_points: int = 5000, batch_age_s: float = 0.2,
                 agents: AgentBook | None = None,
                 formulas: FormulaRunner | None = None, home_assistant: tuple[str, float] | None = None,
                 alerts: AlertsConfig | None = None) -> None:
        self.mqtt, self.store, self.metrics = mqtt, store, metrics
        self.agents = agents or AgentBook(metrics, count_gaps=share_group is None)
        self.formulas = formulas
        self.topic = f"{mqtt.root}/data/#"
        if share_group:
            self.topic = f"$share/{share_group}/{self.topic}"
        self.status_prefix = f"{mqtt.root}/status/"
        self.batch_points, self.batch_age_s = batch_points, batch_age_s
        self.client = make_client(mqtt, client_id, persistent=True, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = survive(self._on_message, log)
        self.client.on_subscribe = self._on_subscribe
        self.marker_topic = hub_topic(mqtt.root, client_id)
        self._subscribe_mid = -1
        self._handoff = Handoff(max_points=2 * batch_points)
        self._limits = BatchLimits(batch_points, FLUSH_MESSAGES, batch_age_s, QUIET_S)
        self._stop = threading.Event()
        self._writers = [threading.Thread(target=self._write_loop, name="hub-writer", daemon=True),
                         threading.Thread(target=self._help_loop, name="hub-writer-2", daemon=True)]
        self._turn = threading.Condition()
        self._acked_tickets = 0  # batches whose turn to acknowledge has passed
        self.heartbeat = Heartbeat()
        self.connected = threading.Event()
        self.marked = threading.Event()  # the broker confirmed our subscription and we said so
        self._connection = 0
        self.ha: HomeAssistant | None = None
        if home_assistant is not None:
            prefix, every_s = home_assistant
            self.ha = HomeAssistant(self.client, mqtt.root, prefix, every_s, self.agents.agent_of)
        self.alerts = open_engine(alerts, metrics, self.client, mqtt.root, self.ha) if alerts else None
        if self.alerts:
            self.agents.on_status = self.alerts.agent_status
            if self.agents.count_gaps:
                self.alerts.gap_counts = self.agents.gap_counts
        if formulas is not None:
            formulas.on_written = self._derived_written

    def _derived_written(self, points: list[Point]) -> None:
        """Formulas' series are sensors and alert subjects too."""
        if self.ha:
            self.ha.seen(points)
        if self.alerts:
            self.alerts.observe(points)

    def start(self) -> None:
        for writer in self._writers:
            writer.start()
        if self.formulas:
            self.formulas.start()
        if self.ha:
            self.ha.start()
        if self.alerts:
            self.alerts.start()
        connect_async(self.client, self.mqtt, persistent=True, receive_maximum=RECEIVE_MAXIMUM)

    def stop(self) -> None:
        """Store and acknowledge what was taken, then disconnect; later messages stay with the broker."""
        self._stop.set()
        for writer in self._writers:
            writer.join(30)
        # Each part stops even when one before it fails: the alerts' last changes and the broker's session matter
        # more than a formula's last rows (which the next start computes again).
        for part in (self.formulas, self.ha, self.alerts):  # alerts: its MQTT notifications wait in its outbox
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("hub: stopping %s failed; stopping the rest", type(part).__name__)
        close(self.client)

    def healthy(self) -> bool:
        """For systemd's watchdog: the writers still turn (the first beats at least every RETRY_MAX_S, even idle)."""
        return all(w.is_alive() for w in self._writers) and self.heartbeat.fresh(2 * RETRY_MAX_S)

    def _on_connect(self, client: paho.Client, _u: object, flags: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT broker refused the hub: %s", reason)
            return
        log.info("hub connected (session present: %s); subscribing to %s",
                 getattr(flags, "session_present", "?"), self.topic)
        self._connection += 1
        topics = [(self.topic, 1), (self.status_prefix + "#", 1)]
        if self.ha:
            topics.append((self.ha.birth_topic, 1))
        _rc, mid = client.subscribe(topics)
        self._subscribe_mid = -1 if mid is None else mid
        self.connected.set()

    def _on_subscribe(self, client: paho.Client, _u: object, mid: int, reasons: list[ReasonCode],
                      _p: Properties) -> None:
        """The broker now holds our data subscription: say so, retained, for agents that wait for a hub."""
        if mid != self._subscribe_mid:
            return
        if any(r.is_failure for r in reasons):
            log.error("MQTT broker refused a subscription (%s): not marking this hub subscribed", reasons)
            return
        # Retained with the session: a broker that loses its sessions loses this marker too, so agents hold their
        # points until the hub has subscribed again (the race the marker closes: SPEC.md has none of it).
        client.publish(self.marker_topic, hub_marker_payload(int(time.time() * 1000), self.topic), qos=1, retain=True)
        self.marked.set()

    def _on_status(self, client: paho.Client, msg: paho.MQTTMessage) -> None:
        parts = msg.topic[len(self.status_prefix) :].split("/")
        try:
            if len(parts) != 2:
                raise ValueError(f"must be {self.status_prefix}site/agent")
            self.agents.status(parts[0], parts[1], bytes(msg.payload), retained=bool(msg.retain))
        except ValueError as exc:
            log.warning("ignored status on %s: %s", msg.topic[:200], exc)
            self.metrics.inc("powerhub_status_ignored_total")
        client.ack(msg.mid, msg.qos)

    def _on_message(self, client: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        if msg.topic.startswith(self.status_prefix):
            self._on_status(client, msg)
            return
        if self.ha and msg.topic == self.ha.birth_topic:
            self.ha.birth(bytes(msg.payload))
            client.ack(msg.mid, msg.qos)
            return
        topic = msg.topic  # paho decodes it on every access
        try:
            key = parse_data_topic(self.mqtt.root, topic)
            points = decode_payload(key, bytes(msg.payload), parse_json_fast)
        except (TopicError, PayloadError) as exc:
            reason = exc.reason if isinstance(exc, PayloadError) else "topic"
            log.warning("dropped message on %s: %s", topic[:200], exc)
            self.metrics.inc("powerhub_points_dropped_total", reason=reason)
            client.ack(msg.mid, msg.qos)  # a bad message never gets better: do not let the broker resend it
            return
        self.metrics.inc("powerhub_points_received_total", len(points))
        message = Message(msg.mid, msg.qos, points, self._connection)
        while not self._stop.is_set():
            if self._handoff.put(message, timeout_s=0.5):
                return
            # The store is slow or down: holding paho here is the back-pressure we want.

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and not len(self._handoff)):
            self.heartbeat.beat()
            batch = self._handoff.take(self._limits, wait_s=0.5)
            if batch:
                self._store_in_turn(batch, "1")

    def _help_loop(self) -> None:
        while not self._stop.is_set():
            batch = self._handoff.take_full(self._limits, wait_s=0.5)
            if batch:
                self._store_in_turn(batch, "2")

    def _store_in_turn(self, batch: Batch, writer: str) -> None:
        stored = False
        try:
            stored = self._store(batch.messages)
            if stored:
                self.metrics.inc("powerhub_store_batches_total", writer=writer)  # how often the second one helps
        finally:  # always take the turn, or the other writer would wait for it forever
            self._ack_in_turn(batch.ticket, batch.messages if stored else [])

    def _ack_in_turn(self, ticket: int, messages: list[Message]) -> None:
        """Acknowledge in the order the batches were taken, so in the order the messages came (as MQTT asks)."""
        with self._turn:
            self._turn.wait_for(lambda: self._acked_tickets == ticket)
            for m in messages:
                # After a reconnect the broker resends what we had not acknowledged, under ids that may now name
                # other messages: acknowledging an old id could ack a message not yet stored. The resent copy is
                # stored again (same series and ts: stored once) and acknowledged then.
                if m.connection == self._connection:
                    self.client.ack(m.mid, m.qos)
            self._acked_tickets += 1
            self._turn.notify_all()

    def _track(self, points: list[Point]) -> None:
        by_device: dict[tuple[str, str], list[int]] = {}
        last_key, seqs = None, []
        for p in points:
            if p.key is not last_key:  # a payload's points share their key: looked up once per run
                last_key, seqs = p.key, by_device.setdefault((p.key.site, p.key.device), [])
            seqs.append(p.seq)
        for (site, device), device_seqs in by_device.items():
            self.agents.observe(site, device, sorted(device_seqs))

    def _store(self, batch: list[Message]) -> bool:
        """Write the batch, retrying while the store is unavailable; False: stopped before it was stored."""
        points = [p for m in batch for p in m.points]
        expected = self.formulas.expect(points) if self.formulas else []
        try:
            return self._store_points(points, expected)
        finally:
            if self.formulas:
                self.formulas.release(expected)

    def _store_points(self, points: list[Point], expected: Expected) -> bool:
        delay_s, logged = 0.5, False
        while True:
            t0 = time.perf_counter()
            try:
                if expected and self.formulas:
                    # Old windows' rollups are marked pending before their points land: /history never answers
                    # from rows that lack points already stored (hub.formulas.base).
                    self.formulas.mark_expected(expected)
                self.store.write(points)
                self.metrics.observe("powerhub_store_write_seconds", time.perf_counter() - t0)
                self.metrics.inc("powerhub_points_stored_total", len(points))
                self._track(points)
                if self.formulas:
                    self.formulas.note(points)
                if self.ha:
                    self.ha.seen(points)
                if self.alerts:
                    self.alerts.observe(points)
                if logged:
                    log.info("store is back; wrote %d held points", len(points))
                break
            except StoreRejected as exc:
                log.error("store rejected a batch of %d points for good: %s", len(points), exc)
                self.metrics.inc("powerhub_points_dropped_total", len(points), reason="rejected")
                break
            except StoreUnavailable as exc:
                if not logged:
                    log.error("store unavailable (%s); holding %d points, not acknowledging", exc, len(points))
                    logged = True
                self.metrics.inc("powerhub_store_errors_total")
                if self._stop.wait(delay_s):
                    return False  # unacknowledged: the broker redelivers them to the next hub session
                self.heartbeat.beat()  # waiting for the store is not being stuck
                delay_s = min(RETRY_MAX_S, delay_s * 2)
        return True  # stored, or rejected for good (a batch that never gets better is acknowledged too)
