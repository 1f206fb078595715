"""MQTT topics, SPEC.md section 2: `{root}/data/{site}/{device}/{channel}` and `{root}/status/{site}/{agent}`.

Beyond SPEC: `{root}/hub/{client_id}`, the retained marker a hub publishes once the broker has confirmed its data
subscription, so that agents (`agent.wait_for_hub`) know a point published now reaches a hub's session.
"""

from __future__ import annotations

import functools

from telemetry.errors import PowerhubError
from telemetry.names import NameError_, SeriesKey, check_name


class TopicError(PowerhubError, ValueError):
    """A topic that is not a well-formed data topic under our root."""


def data_topic(root: str, key: SeriesKey) -> str:
    return f"{root}/data/{key.site}/{key.device}/{key.channel}"


def status_topic(root: str, site: str, agent: str) -> str:
    return f"{root}/status/{check_name('site', site)}/{check_name('agent', agent)}"


def alert_topic(root: str, site: str, rule: str, subject: str) -> str:
    """`{root}/alert/{site}/{rule}/{subject}`: one retained topic per alert (subject: a series id, an agent)."""
    return f"{root}/alert/{site}/{rule}/{subject}"


def alert_filter(root: str) -> str:
    return f"{root}/alert/#"


def web_topic(root: str, client_id: str) -> str:
    """A web app's own topic (its alert board's sync probe): nobody else reads it."""
    return f"{root}/web/{client_id}"


def web_filter(root: str) -> str:
    return f"{root}/web/#"


def hub_topic(root: str, client_id: str) -> str:
    return f"{root}/hub/{client_id}"


def hub_filter(root: str) -> str:
    return f"{root}/hub/+"


@functools.lru_cache(maxsize=4096)  # the hub parses every message's topic; a site has few of them
def parse_data_topic(root: str, topic: str) -> SeriesKey:
    """The series a data topic names; the root may itself contain slashes (`$share/...` is not part of it)."""
    prefix = f"{root}/data/"
    if not topic.startswith(prefix):
        raise TopicError(f"topic {topic!r} is not under {prefix!r}")
    parts = topic[len(prefix) :].split("/")
    if len(parts) != 3:
        raise TopicError(f"topic {topic!r} must be {prefix}site/device/channel")
    try:
        return SeriesKey(*parts)
    except NameError_ as exc:
        raise TopicError(f"topic {topic!r}: {exc}") from None
