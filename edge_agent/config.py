"""`[agent]`, `[[agent.readers]]` and `[mqtt]` as typed settings, checked at start-up with the key's path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge_agent.readers import Reader, reader_from_config
from telemetry.config import ConfigError, MqttConfig, Section, state_path
from telemetry.names import NameError_, check_name


def parse_machines(top: Section, site: str) -> dict[str, str]:
    """`[[inventory.machines]]` of this agent's site as `{"device.channel": machine}`: points of those sources
    carry `machine`. The rest of `[inventory]` is for `powerhub mqtt-acl` and is not checked here."""
    out: dict[str, str] = {}
    inventory = Section(top.data.get("inventory"), "inventory")
    for sec in inventory.tables("machines"):
        name, machine_site = sec.name("name"), sec.name("site")
        sources = sec.str_list("sources", [])
        for i, source in enumerate(sources):
            device, _, channel = source.partition(".")
            try:
                check_name("device", device)
                check_name("channel", channel)
            except NameError_ as exc:
                raise sec.error(f"sources[{i}]", f"must be device.channel: {exc}") from None
            if machine_site == site:
                out[source] = name
        sec.finish()
    return out


@dataclass(frozen=True)
class AgentConfig:
    site: str
    name: str
    outbox: str
    readers: list[Reader]
    mqtt: MqttConfig
    machines: dict[str, str] = field(default_factory=dict)

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
            readers=readers,
            mqtt=MqttConfig.parse(top.table("mqtt")),
            machines=parse_machines(top, site),
        )
        agent.finish()
        return cfg
