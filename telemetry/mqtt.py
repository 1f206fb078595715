"""One way to build a paho-mqtt 2.x client from `[mqtt]`, for agent, hub and web alike."""

from __future__ import annotations

import functools
import json
import logging
import ssl
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telemetry.config import MqttConfig
from telemetry.payload import parse_json

SESSION_EXPIRY_S = 7 * 24 * 3600  # how long the broker keeps a persistent session's queued messages
HUB_SUBSCRIBED = "subscribed"
# MQTT 5 PUBACK reason 0x10: the broker took the message and nobody subscribed to it. Not a failure in MQTT's eyes,
# but for a point it means nobody will store it.
NO_MATCHING_SUBSCRIBERS = 0x10


def make_client(cfg: MqttConfig, client_id: str, persistent: bool = False, manual_ack: bool = False) -> paho.Client:
    v5 = cfg.protocol == "5"
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if cfg.username is not None:
        client.username_pw_set(cfg.username, cfg.password)
    if cfg.tls:
        client.tls_set(ca_certs=cfg.ca_file, certfile=cfg.cert_file, keyfile=cfg.key_file,
                       tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


OnMessage = Callable[[paho.Client, Any, paho.MQTTMessage], None]


def survive(on_message: OnMessage, log: logging.Logger) -> OnMessage:
    """`on_message` that logs what it raises instead of letting it end paho's network thread (paho re-raises
    callbacks' exceptions there): whatever a message holds, the client goes on receiving the next."""

    @functools.wraps(on_message)
    def guarded(client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            on_message(client, userdata, msg)
        except Exception:
            log.exception("message on %s not handled", msg.topic[:200])

    return guarded


def connect_async(client: paho.Client, cfg: MqttConfig, persistent: bool = False,
                  receive_maximum: int | None = None) -> None:
    """Start connecting in paho's own thread, which also reconnects with backoff after any loss.

    `receive_maximum` (MQTT 5) caps the messages the broker sends us unacknowledged: the rest wait at the broker."""
    kwargs: dict[str, object] = {}
    if cfg.protocol == "5":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S if persistent else 0
        if receive_maximum is not None:
            props.ReceiveMaximum = receive_maximum
        kwargs = {"clean_start": not persistent, "properties": props}
    client.connect_async(cfg.host, cfg.port, keepalive=30, **kwargs)  # type: ignore[arg-type]
    client.loop_start()


def close(client: paho.Client) -> None:
    """Disconnect, stop the network thread and close the client's sockets now. paho closes its wake-up socket pair
    only in `__del__`, and a client in a reference cycle with its owner (through its callbacks) waits for the garbage
    collector, which may finalize the sockets first: a ResourceWarning, an error under pytest's `-W error`."""
    client.disconnect()
    client.loop_stop()
    client._reset_sockets()  # what paho's __del__ does


def status_payload(state: str, ts_ms: int, version: str, devices: list[str] | None = None) -> bytes:
    """The agent's retained status. `devices` (beyond SPEC's fields) tells the hub whose `seq` a device's points
    carry, so it can track gaps per agent."""
    doc: dict[str, object] = {"state": state, "ts": ts_ms, "version": version}
    if devices is not None:
        doc["devices"] = sorted(devices)
    return json.dumps(doc).encode()


def hub_marker_payload(ts_ms: int, topic: str) -> bytes:
    """The hub's retained marker: the broker confirmed its subscription to `topic` at `ts_ms`."""
    return json.dumps({"state": HUB_SUBSCRIBED, "ts": ts_ms, "topic": topic}).encode()


def is_hub_marker(payload: bytes) -> bool:
    """A retained `{root}/hub/+` message that says a hub is subscribed (an empty one clears a retired hub's)."""
    try:
        doc = parse_json(payload)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("state") == HUB_SUBSCRIBED


def matched_no_subscriber(reason: object) -> bool:
    """Whether an accepted PUBACK says (MQTT 5) that no subscription matched the message."""
    return getattr(reason, "value", 0) == NO_MATCHING_SUBSCRIBERS
