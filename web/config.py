"""`[web]` as typed settings."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from telemetry.config import Section
from telemetry.names import NameError_, parse_series_id


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    url_prefix: str = ""
    blip_default: str | None = None
    blip_aliases: dict[str, str] = field(default_factory=dict)
    longpoll_s: float | None = None
    live: bool = True
    hub_url: str | None = None  # the hub's HTTP endpoint (`hub.listen`), for agents' state and seq gaps

    @staticmethod
    def parse(sec: Section) -> WebConfig:
        listen = sec.listen("listen", "127.0.0.1:8080")
        assert listen is not None
        allow = []
        for i, cidr in enumerate(sec.str_list("allow", ["127.0.0.0/8", "::1/128"])):
            try:
                allow.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError as exc:
                raise sec.error(f"allow[{i}]", str(exc)) from None
        prefix = sec.string("url_prefix", "").rstrip("/")
        if prefix and not prefix.startswith("/"):
            raise sec.error("url_prefix", f"must start with '/', not {prefix!r}")
        aliases = sec.str_map("blip_aliases")
        for key, series_id in [("blip_default", sec.string("blip_default", None))] + [
            (f"blip_aliases.{k}", v) for k, v in aliases.items()
        ]:
            if series_id is not None:
                try:
                    parse_series_id(series_id)
                except NameError_ as exc:
                    raise sec.error(key, str(exc)) from None
        cfg = WebConfig(
            host=listen[0],
            port=listen[1],
            allow=tuple(allow),
            url_prefix=prefix,
            blip_default=sec.string("blip_default", None),
            blip_aliases=aliases,
            longpoll_s=sec.number("longpoll_s", None, positive=True),
            live=sec.boolean("live", True),
            hub_url=sec.string("hub_url", None),
        )
        sec.finish()
        return cfg

    @staticmethod
    def from_doc(doc: dict[str, Any]) -> WebConfig:
        return WebConfig.parse(Section(doc.get("web"), "web"))
