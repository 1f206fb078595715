"""The wire contract: names, series ids, topics and the payload codec, including every way a payload is refused."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.subscriber import parse_json_fast
from telemetry import (
    MAX_PAYLOAD_BYTES,
    NameError_,
    PayloadError,
    Point,
    SeriesKey,
    TopicError,
    data_topic,
    decode_payload,
    encode_points,
    parse_data_topic,
    parse_series_id,
    series,
    status_topic,
)
from telemetry.mqtt import hub_marker_payload, is_hub_marker, survive
from telemetry.payload import parse_json

KEY = SeriesKey("lab", "mainmeter", "power")
TS = 1_700_000_000_000


@pytest.mark.parametrize("name", ["lab", "a", "0", "pdu-a3", "outlet_1", "x" * 63])
def test_valid_names(name: str) -> None:
    assert SeriesKey(name, name, name).id == f"{name}.{name}.{name}"


@pytest.mark.parametrize("name", ["", "Lab", "-lab", "_x", "a.b", "a/b", "a b", "x" * 64, "ø", "+", "#"])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(NameError_, match="must match"):
        SeriesKey("lab", name, "power")


def test_series_id_round_trip() -> None:
    assert parse_series_id("lab.mainmeter.power") == KEY
    for bad in ("lab.mainmeter", "a.b.c.d", "", "lab..power"):
        with pytest.raises(NameError_):
            parse_series_id(bad)


def test_topics() -> None:
    assert data_topic("powerhub", KEY) == "powerhub/data/lab/mainmeter/power"
    assert parse_data_topic("powerhub", "powerhub/data/lab/mainmeter/power") == KEY
    assert parse_data_topic("a/b", "a/b/data/lab/mainmeter/power") == KEY
    assert status_topic("powerhub", "lab", "basement-pi") == "powerhub/status/lab/basement-pi"
    for bad in ("other/data/lab/m/power", "powerhub/data/lab/m", "powerhub/data/lab/m/p/x", "powerhub/data/LAB/m/p"):
        with pytest.raises(TopicError):
            parse_data_topic("powerhub", bad)


def test_measurement_by_channel() -> None:
    assert KEY.measurement == "power"
    assert SeriesKey("lab", "host", "load1").measurement == "load"


@pytest.mark.parametrize(("channel", "measurement", "field", "unit"), [
    ("power", "power", "w", "W"), ("outlet-2-7", "power", "w", "W"), ("formula-power", "power", "w", "W"),
    ("load-cpu-web", "load", "value", ""), ("energy-day-power", "energy", "value", "kWh"),
    ("rollup-hour-power", "rollup", "value", ""),
])
def test_the_vocabulary_decides_measurement_field_and_unit(channel: str, measurement: str, field: str,
                                                            unit: str) -> None:
    key = SeriesKey("lab", "dev", channel)
    assert (key.measurement, key.main_field, series.unit_of(key.measurement)) == (measurement, field, unit)
    assert series.MEASUREMENTS[measurement].listed == (measurement != "rollup")


def test_derived_channels_and_outlets() -> None:
    assert series.outlet_channel(2, 7) == "outlet-2-7" and series.is_outlet("outlet-2-7")
    assert series.formula_channel("power") == "formula-power"
    assert all(series.is_derived_channel(c) for c in ("formula-power", "energy-day-power", "rollup-due-power"))
    assert not series.is_derived_channel("power") and not series.is_derived_channel("outlet-1")


def test_encode_decode_object_and_array() -> None:
    one = Point(KEY, TS, 7, {"w": 3600.0, "ms": 1000})
    assert json.loads(encode_points([one])) == {"ts": TS, "seq": 7, "w": 3600.0, "ms": 1000}
    assert decode_payload(KEY, encode_points([one])) == [one]
    many = [Point(KEY, TS + i, i, {"w": float(i)}) for i in range(3)]
    assert isinstance(json.loads(encode_points(many)), list)
    assert decode_payload(KEY, encode_points(many)) == many


def test_decode_converts_and_keeps_extras() -> None:
    body = {"ts": TS, "seq": 1, "w": 100, "a": 2, "machine": "node17", "note": "x", "n": 3, "ok": True,
            "nested": {"k": [1]}, "bad name!": 1, "site": "evil"}
    (p,) = decode_payload(KEY, json.dumps(body).encode())
    assert p.fields == {"w": 100.0, "a": 2.0, "machine": "node17", "note": "x", "n": 3.0, "ok": True,
                        "nested": '{"k":[1]}'}
    assert isinstance(p.fields["w"], float)


def test_load_series_needs_value() -> None:
    key = SeriesKey("lab", "host", "load1")
    (p,) = decode_payload(key, json.dumps({"ts": TS, "seq": 1, "value": 0.5}).encode())
    assert p.number == 0.5
    with pytest.raises(PayloadError, match="'value' is required"):
        decode_payload(key, json.dumps({"ts": TS, "seq": 1, "w": 1.0}).encode())


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "json"),
        (b"\xff\xfe", "json"),
        (b"", "json"),
        (b"42", "type"),
        (b"[]", "type"),
        (b"[1, 2]", "type"),
        (b'{"seq": 1, "w": 1.0}', "missing"),
        (b'{"ts": 1700000000000, "w": 1.0}', "missing"),
        (b'{"ts": 1700000000000, "seq": 1}', "missing"),
        (b'{"ts": "1700000000000", "seq": 1, "w": 1.0}', "type"),
        (b'{"ts": 1700000000000.5, "seq": 1, "w": 1.0}', "type"),
        (b'{"ts": true, "seq": 1, "w": 1.0}', "type"),
        (b'{"ts": 1700000000, "seq": 1, "w": 1.0}', "range"),
        (b'{"ts": 1700000000000000, "seq": 1, "w": 1.0}', "range"),
        (b'{"ts": 1700000000000, "seq": -1, "w": 1.0}', "range"),
        (b'{"ts": 1700000000000, "seq": 1, "w": "100"}', "type"),
        (b'{"ts": 1700000000000, "seq": 1, "w": NaN}', "type"),
        (b'{"ts": 1700000000000, "seq": 1, "w": Infinity}', "type"),
        (b'{"ts": 1700000000000, "seq": 1, "w": 1.0, "ms": 0}', "type"),
        (b'{"ts": 1700000000000, "seq": 1, "w": 1.0, "ms": 1.5}', "type"),
        (b'{"ts": 1700000000000, "seq": 1, "w": 1.0, "machine": 5}', "type"),
        (b"[" * 100_000 + b"]" * 100_000, "json"),  # Python's parser gives up with RecursionError
        # Valid JSON that no store can hold: past int64, past a float, and a lone surrogate (not UTF-8)
        (b'{"ts": 1700000000000, "seq": 9223372036854775808, "w": 1.0}', "range"),
        (b'{"ts": 1700000000000, "seq": 1, "w": 1.0, "ms": 9223372036854775808}', "range"),
        (b'{"ts": 1700000000000, "seq": 1, "w": 1' + b"0" * 400 + b"}", "range"),
        (b'{"ts": 1700000000000, "seq": 1, "w": 1.0, "extra": -2' + b"0" * 400 + b"}", "range"),
        (b'{"ts": 1700000000000, "seq": 1, "w": 1.0, "machine": "\\ud800"}', "type"),
        (b'{"ts": 1700000000000, "seq": 1, "w": 1.0, "extra": "a\\udc80"}', "type"),
    ],
)
@pytest.mark.parametrize("loads", [parse_json, parse_json_fast], ids=["json", "hub-orjson"])
def test_malformed_payloads_are_refused_with_a_reason(payload: bytes, reason: str,
                                                      loads: Callable[[bytes], object]) -> None:
    with pytest.raises(PayloadError) as exc:
        decode_payload(KEY, payload, loads)
    assert exc.value.reason == reason


def test_the_hubs_parser_decodes_what_json_decodes() -> None:
    body = json.dumps([{"ts": TS + i, "seq": i, "w": i / 7, "ms": 2**63 - 1, "machine": "héllo ☃", "x": [1, {}]}
                       for i in range(100)]).encode()
    assert decode_payload(KEY, body, parse_json_fast) == decode_payload(KEY, body)


def test_integers_past_int64_are_kept_where_they_are_stored_as_floats() -> None:
    body = {"ts": TS, "seq": 2**63 - 1, "w": 2**64, "ms": 2**63 - 1, "extra": -(2**70)}
    (p,) = decode_payload(KEY, json.dumps(body).encode())
    assert (p.seq, p.fields) == (2**63 - 1, {"w": float(2**64), "ms": 2**63 - 1, "extra": float(-(2**70))})


def test_oversized_payload_is_refused_before_parsing() -> None:
    payload = b"[" + b" " * MAX_PAYLOAD_BYTES + b"]"
    with pytest.raises(PayloadError) as exc:
        decode_payload(KEY, payload)
    assert exc.value.reason == "oversized"


@pytest.mark.parametrize(("payload", "is_marker"), [
    (hub_marker_payload(1_700_000_000_000, "powerhub/data/#"), True), (b"", False), (b"\xff", False),
    (b'{"state": "gone"}', False), (b"[" * 100_000 + b"]" * 100_000, False),
])
def test_only_a_hub_marker_is_one(payload: bytes, is_marker: bool) -> None:
    """An agent reads these on its paho thread: nothing that arrives there may raise (an empty one clears a marker)."""
    assert is_hub_marker(payload) is is_marker


def test_an_on_message_that_raises_is_logged_and_paho_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_client: object, _userdata: object, _msg: object) -> None:
        raise KeyError("surprise")

    msg = paho.MQTTMessage(topic=b"powerhub/data/lab/m/power")
    survive(broken, logging.getLogger("test"))(paho.Client(CallbackAPIVersion.VERSION2), None, msg)  # no raise
    [record] = caplog.records
    assert "message on powerhub/data/lab/m/power not handled" in record.getMessage() and record.exc_info
