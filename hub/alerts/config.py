"""`[alerts]`: where alerts go, the threshold rules (SPEC.md section 7) and the built-in rules' settings."""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from telemetry.config import Section, state_path
from telemetry.inventory import Machine, PduRating, SiteLimit, parse_machines, parse_pdus, parse_sites

FIELDS = ("w", "a", "va", "value")
SEVERITIES = ("warning", "critical")
# A rule holds until the value is this far back inside its limit, so a value hovering at the line does not flap.
HYSTERESIS_FRACTION = 0.05
# A transition on a point older than this (a backlog from an outbox) goes into the history, not to a pager.
NOTIFY_WITHIN_S = 300.0
STALE = "stale"
OFFLINE = "offline"
CAPACITY = "capacity"  # warning: a phase or bank past `warn_fraction` of its rating
OVERLOAD = "overload"  # critical: past its rating
REDUNDANCY = "redundancy"  # a PDU could not carry its twin's share if the twin's feed failed
SITE_LIMIT = "site-limit"  # critical: the site's main meter past its contracted limit
SITE_SOFT_LIMIT = "site-soft-limit"  # warning: past its soft limit
GAPS = "gaps"  # an agent's points went missing for good (seq gaps)
BUILTIN_RULES = (STALE, OFFLINE, CAPACITY, OVERLOAD, REDUNDANCY, SITE_LIMIT, SITE_SOFT_LIMIT, GAPS)
_SERIES_GLOB = re.compile(r"^[a-z0-9_\-*?\[\]!]+\.[a-z0-9_\-*?\[\]!]+\.[a-z0-9_\-*?\[\]!]+$")


@dataclass(frozen=True)
class ThresholdRule:
    name: str
    series: str  # a glob over series ids
    field: str | None  # None: the series' main value
    above: float | None
    below: float | None
    clear_at: float  # back past this, the alert resolves
    for_s: float
    severity: str
    _match: re.Pattern[str] = dataclasses.field(repr=False, compare=False, default=re.compile(""))

    @property
    def limit(self) -> float:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    def matches(self, series_id: str) -> bool:
        return self._match.match(series_id) is not None

    def breached(self, value: float) -> bool:
        return value > self.above if self.above is not None else value < self.limit

    def cleared(self, value: float) -> bool:
        return value <= self.clear_at if self.above is not None else value >= self.clear_at

    @staticmethod
    def above_limit(name: str, subject: str, limit: float, for_s: float, severity: str) -> ThresholdRule:
        """A built-in rule's threshold for one subject, with the default hysteresis."""
        return ThresholdRule(name, subject, None, limit, None, limit * (1 - HYSTERESIS_FRACTION), for_s, severity)

    @staticmethod
    def parse(sec: Section, reserved: tuple[str, ...]) -> ThresholdRule:
        name = sec.name("name")
        if name in reserved:
            table = {OVERLOAD: CAPACITY, SITE_SOFT_LIMIT: SITE_LIMIT}.get(name, name).replace("-", "_")
            raise sec.error("name", f"{name!r} is a built-in rule's name (set it up in [alerts.{table}])")
        series = sec.string("series")
        if not _SERIES_GLOB.match(series):
            raise sec.error("series", f"must be a glob over site.device.channel ids (e.g. 'lab.pdu-*.outlet-*'), "
                                      f"not {series!r}: it could never match a series")
        field_ = sec.string("field", None, choices=FIELDS)
        above, below = sec.number("above", None), sec.number("below", None)
        if (above is None) == (below is None):
            raise sec.error("above", "give exactly one of above and below")
        limit = above if above is not None else below
        assert limit is not None
        default_clear = limit - HYSTERESIS_FRACTION * abs(limit) * (1 if above is not None else -1)
        clear_at = sec.number("clear_at", default_clear)
        if (above is not None and clear_at > above) or (below is not None and clear_at < below):
            raise sec.error("clear_at", f"must be on the normal side of the limit {limit:g}, not {clear_at:g}")
        rule = ThresholdRule(name, series, field_, above, below, clear_at,
                             _for_s(sec, 0.0), sec.string("severity", "warning", choices=SEVERITIES),
                             re.compile(fnmatch.translate(series)))
        sec.finish()
        return rule


@dataclass(frozen=True)
class StaleConfig:
    """A measured series that has not reported for `intervals` of its usual interval (and at least `min_s`)."""

    enabled: bool
    intervals: float
    min_s: float
    severity: str

    @staticmethod
    def parse(sec: Section) -> StaleConfig:
        cfg = StaleConfig(sec.boolean("enabled", True), sec.number("intervals", 5.0, positive=True),
                          sec.number("min_s", 30.0, positive=True),
                          sec.string("severity", "warning", choices=SEVERITIES))
        sec.finish()
        return cfg


@dataclass(frozen=True)
class OfflineConfig:
    """An agent whose retained status says offline (its last will) for `for_s`."""

    enabled: bool
    for_s: float
    severity: str

    @staticmethod
    def parse(sec: Section) -> OfflineConfig:
        cfg = OfflineConfig(sec.boolean("enabled", True), _for_s(sec, 60.0),
                            sec.string("severity", "critical", choices=SEVERITIES))
        sec.finish()
        return cfg


@dataclass(frozen=True)
class GapsConfig:
    """An agent's seq gaps that stay open `for_s` (not filled by its outbox's late points); resolved after
    `clear_after_s` without a new one."""

    enabled: bool
    for_s: float
    clear_after_s: float
    severity: str

    @staticmethod
    def parse(sec: Section) -> GapsConfig:
        cfg = GapsConfig(sec.boolean("enabled", True), _for_s(sec, 60.0),
                         sec.number("clear_after_s", 3600.0, positive=True),
                         sec.string("severity", "warning", choices=SEVERITIES))
        sec.finish()
        return cfg


@dataclass(frozen=True)
class CapacityConfig:
    """Each phase and bank against its rating (`[[inventory.pdus]]` rating_a / banks_a, else the PDU's own limit_a):
    `capacity` (warning) past `warn_fraction`, as electricians size continuous loads, `overload` (critical) past it."""

    enabled: bool
    warn_fraction: float
    for_s: float

    @staticmethod
    def parse(sec: Section) -> CapacityConfig:
        cfg = CapacityConfig(sec.boolean("enabled", True), sec.number("warn_fraction", 0.8, positive=True),
                             _for_s(sec, 10.0))
        if cfg.warn_fraction >= 1:
            raise sec.error("warn_fraction", f"must be below 1 (the rating itself is `overload`), not "
                                             f"{cfg.warn_fraction:g}")
        sec.finish()
        return cfg


@dataclass(frozen=True)
class LimitConfig:
    """A built-in rule with only a switch and a duration: `redundancy`, `site-limit`."""

    enabled: bool
    for_s: float

    @staticmethod
    def parse(sec: Section, for_s: float) -> LimitConfig:
        cfg = LimitConfig(sec.boolean("enabled", True), _for_s(sec, for_s))
        sec.finish()
        return cfg


def _for_s(sec: Section, default: float) -> float:
    for_s = float(sec.number("for_s", default))
    if for_s < 0:
        raise sec.error("for_s", f"must be 0 or more, not {for_s:g}")
    return for_s


@dataclass(frozen=True)
class AlertsConfig:
    alertmanager_url: str | None
    webhook_url: str | None
    rules: list[ThresholdRule]
    stale: StaleConfig
    offline: OfflineConfig
    gaps: GapsConfig
    capacity: CapacityConfig
    redundancy: LimitConfig
    site_limit: LimitConfig
    pdus: list[PduRating]
    sites: list[SiteLimit]
    machines: list[Machine]
    state_file: str
    notify_within_s: float
    retry_max_s: float
    queue_max: int

    @staticmethod
    def parse(top: Section) -> AlertsConfig:
        sec = top.table("alerts")
        rules = [ThresholdRule.parse(r, BUILTIN_RULES) for r in sec.tables("rules")]
        seen: set[str] = set()
        for i, rule in enumerate(rules):
            if rule.name in seen:
                raise sec.error(f"rules[{i}].name", f"{rule.name!r} is already the name of another rule")
            seen.add(rule.name)
        cfg = AlertsConfig(
            alertmanager_url=_http_url(sec, "alertmanager_url"),
            webhook_url=_http_url(sec, "webhook_url"),
            rules=rules,
            stale=StaleConfig.parse(sec.table(STALE)),
            offline=OfflineConfig.parse(sec.table(OFFLINE)),
            gaps=GapsConfig.parse(sec.table(GAPS)),
            capacity=CapacityConfig.parse(sec.table(CAPACITY)),
            redundancy=LimitConfig.parse(sec.table(REDUNDANCY), 30.0),
            site_limit=LimitConfig.parse(sec.table("site_limit"), 60.0),
            pdus=parse_pdus(top),
            sites=parse_sites(top),
            machines=parse_machines(top),
            state_file=sec.string("state_file", os.path.abspath(state_path("alerts.sqlite"))),
            notify_within_s=sec.number("notify_within_s", NOTIFY_WITHIN_S, positive=True),
            retry_max_s=sec.number("retry_max_s", 60.0, positive=True),
            queue_max=sec.integer("queue_max", 10_000, min_value=1),
        )
        sec.finish()
        _rules_match_known_sites(sec, cfg, _known_sites(top, cfg))
        return cfg

    def or_none(self) -> AlertsConfig | None:
        """None when there is nothing to judge: no rule and the built-in rules switched off."""
        rated = self.capacity.enabled or (self.redundancy.enabled and self.pdus) or \
            (self.site_limit.enabled and self.sites)
        return self if self.rules or self.stale.enabled or self.offline.enabled or self.gaps.enabled or rated \
            else None


def _known_sites(top: Section, cfg: AlertsConfig) -> set[str]:
    """The sites the config names anywhere in `[inventory]`: its agents, machines, PDUs and sites."""
    inventory = top.data.get("inventory")
    agents = inventory.get("agents", []) if isinstance(inventory, dict) else []
    named = {a.get("site") for a in agents if isinstance(a, dict)} if isinstance(agents, list) else set()
    named |= {m.site for m in cfg.machines} | {p.site for p in cfg.pdus} | {s.site for s in cfg.sites}
    return {site for site in named if isinstance(site, str)}


def _rules_match_known_sites(sec: Section, cfg: AlertsConfig, sites: set[str]) -> None:
    """A rule whose site part matches none of the sites the config knows is a typo, not a rule that waits for its
    series (a config that names no site at all says nothing either way)."""
    if not sites:
        return
    for i, rule in enumerate(cfg.rules):
        site_glob = rule.series.split(".", 1)[0]
        if not any(fnmatch.fnmatchcase(site, site_glob) for site in sites):
            raise sec.error(f"rules[{i}].series", f"{rule.series!r} matches no site the config knows "
                                                  f"({', '.join(sorted(sites))})")


def _http_url(sec: Section, key: str) -> str | None:
    url = sec.string(key, None)
    if url is not None and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
        raise sec.error(key, f"must be an http:// or https:// URL, not {url!r}")
    return url
