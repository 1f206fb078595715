"""`[hub]` and `[store]` as typed settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hub.alerts.config import AlertsConfig
from hub.formulas import FORMULAS, Formula
from hub.stores import STORES
from telemetry.config import MqttConfig, Section, state_path
from telemetry.inventory import parse_machines


@dataclass(frozen=True)
class StoreConfig:
    url: str
    token: str | None

    @staticmethod
    def parse(sec: Section) -> StoreConfig:
        url = sec.string("url", f"sqlite:///{os.path.abspath(state_path('points.sqlite'))}")
        if urlsplit(url).scheme not in STORES:
            raise sec.error("url", f"must start with one of {', '.join(s + '://' for s in sorted(STORES))}: {url!r}")
        cfg = StoreConfig(url=url, token=sec.secret("token"))
        sec.finish()
        return cfg


@dataclass(frozen=True)
class HomeAssistantConfig:
    prefix: str
    every_s: float

    @staticmethod
    def parse(sec: Section) -> HomeAssistantConfig | None:
        enabled = sec.boolean("enabled", False)
        cfg = HomeAssistantConfig(sec.string("prefix", "homeassistant"), sec.number("every_s", 5.0, positive=True))
        sec.finish()
        return cfg if enabled else None


@dataclass(frozen=True)
class HubConfig:
    client_id: str
    share_group: str | None
    batch_points: int
    batch_age_s: float
    listen: tuple[str, int] | None
    mqtt: MqttConfig
    store: StoreConfig
    formulas: list[Formula] = field(default_factory=list)
    home_assistant: HomeAssistantConfig | None = None
    alerts: AlertsConfig | None = None  # None: no rule and the built-in ones switched off

    @staticmethod
    def parse(doc: dict[str, Any]) -> HubConfig:
        top = Section(doc, "")
        hub = top.table("hub")
        client_id = hub.string("client_id", "powerhub-hub")
        if not client_id or any(c in client_id for c in "/+#"):
            # It names the hub's marker topic, {root}/hub/{client_id}: one topic level.
            raise hub.error("client_id", f"must be non-empty with no '/', '+' or '#', not {client_id!r}")
        cfg = HubConfig(
            client_id=client_id,
            share_group=hub.string("share_group", None),
            batch_points=hub.integer("batch_points", 5000, min_value=1),
            batch_age_s=hub.number("batch_age_s", 0.2, positive=True),
            listen=hub.listen("listen", None),
            mqtt=MqttConfig.parse(top.table("mqtt")),
            store=StoreConfig.parse(top.table("store")),
            formulas=parse_formulas(top),
            home_assistant=HomeAssistantConfig.parse(hub.table("home_assistant")),
            alerts=AlertsConfig.parse(top).or_none(),
        )
        hub.finish()
        return cfg


def parse_formulas(top: Section) -> list[Formula]:
    """`[formulas] enabled = ["energy", ...]` (default `["rollup"]`), each with its own table `[formulas.energy]`."""
    sec = top.table("formulas")
    machines = parse_machines(top)
    out = []
    # Rollups are on unless the list leaves them out: they are what makes long history ranges fast.
    for i, name in enumerate(sec.str_list("enabled", ["rollup"])):
        if name not in FORMULAS:
            raise sec.error(f"enabled[{i}]", f"must be one of {', '.join(sorted(FORMULAS))}, not {name!r}")
        out.append(FORMULAS[name](sec.table(name), machines))
    for name in FORMULAS:
        sec.table(name)  # settings of a formula that is not enabled are not an error
    sec.finish()
    return out
