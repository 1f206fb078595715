"""`[web]` as typed settings."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from telemetry.config import Section
from telemetry.names import NameError_, parse_series_id


def _networks(sec: Section, key: str, default: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for i, cidr in enumerate(sec.str_list(key, default)):
        try:
            out.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError as exc:
            raise sec.error(f"{key}[{i}]", str(exc)) from None
    return out


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
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    token_hashes: frozenset[str] = frozenset()
    price_per_kwh: float | None = None  # the dashboard shows the cost of the energy in view
    currency: str = ""

    @staticmethod
    def parse(sec: Section) -> WebConfig:
        listen = sec.listen("listen", "127.0.0.1:8080")
        assert listen is not None
        allow = _networks(sec, "allow", ["127.0.0.0/8", "::1/128"])
        trusted = _networks(sec, "trusted_proxies", [])
        tokens = sec.str_list("tokens", [])
        for i, hashed in enumerate(tokens):
            if not re.fullmatch(r"sha256:[0-9a-f]{64}", hashed):
                raise sec.error(f"tokens[{i}]", "must be sha256:<64 hex digits>, as `powerhub token` prints")
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
            trusted_proxies=tuple(trusted),
            token_hashes=frozenset(tokens),
            price_per_kwh=sec.number("price_per_kwh", None),
            currency=sec.string("currency", ""),
        )
        sec.finish()
        return cfg

    @staticmethod
    def from_doc(doc: dict[str, Any]) -> WebConfig:
        return WebConfig.parse(Section(doc.get("web"), "web"))
