"""`[agent]`, `[[agent.readers]]` and `[mqtt]` as typed settings, checked at start-up with the key's path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge_agent.outbox import DEFAULT_MAX_MB
from edge_agent.readers import Reader, reader_from_config
from telemetry.config import ConfigError, MqttConfig, Section, state_path
from telemetry.inventory import machines_by_source, parse_machines


@dataclass(frozen=True)
class AgentConfig:
    site: str
    name: str
    outbox: str
    outbox_max_mb: float
    readers: list[Reader]
    mqtt: MqttConfig
    machines: dict[str, str] = field(default_factory=dict)
    wait_for_hub: bool = False

    @staticmethod
    def parse(doc: dict[str, Any]) -> AgentConfig:
        top = Section(doc, "")
        agent = top.table("agent")
        site, name = agent.name("site"), agent.name("name")
        readers = [reader_from_config(sec) for sec in agent.tables("readers")]
        if not readers:
            raise ConfigError("agent.readers: at least one reader is required")
        cfg = AgentConfig(
            site=site,
            name=name,
            outbox=agent.string("outbox", state_path("outbox.sqlite")),
            outbox_max_mb=agent.number("outbox_max_mb", DEFAULT_MAX_MB, positive=True),
            readers=readers,
            mqtt=MqttConfig.parse(top.table("mqtt")),
            machines=machines_by_source(parse_machines(top), site),
            # Off by default: an agent may feed a broker that no powerhub hub reads (its data's other consumers).
            wait_for_hub=agent.boolean("wait_for_hub", False),
        )
        agent.finish()
        return cfg
