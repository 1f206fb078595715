"""The wire contract shared by agent, hub and web (SPEC.md sections 1 and 2).

Everything that crosses a process boundary is built and checked here, so the three programs cannot drift apart.
"""

from telemetry.names import NameError_, SeriesKey, check_name, parse_series_id
from telemetry.payload import MAX_PAYLOAD_BYTES, PayloadError, Point, decode_payload, encode_points
from telemetry.topics import TopicError, data_topic, parse_data_topic, status_topic

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "NameError_",
    "PayloadError",
    "Point",
    "SeriesKey",
    "TopicError",
    "check_name",
    "data_topic",
    "decode_payload",
    "encode_points",
    "parse_data_topic",
    "parse_series_id",
    "status_topic",
]
