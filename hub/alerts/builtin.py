"""The built-in rules that know the electrics: `capacity` and `overload` (a phase or bank against its rating),
`redundancy` (the A/B check), `site-limit` and `site-soft-limit` (the site's main meter against its contract).

Ratings come from `[[inventory.pdus]]` (`rating_a` for the PDU's input phases, `banks_a` per bank), else from the
PDU's own configured overload threshold, the reading's `limit_a`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hub.alerts.config import CAPACITY, OVERLOAD, REDUNDANCY, SITE_LIMIT, SITE_SOFT_LIMIT, AlertsConfig, ThresholdRule
from telemetry import Point, SeriesKey
from telemetry.inventory import PduRating, rating_a
from telemetry.series import CURRENT, PHASE_PREFIX, TOTAL_CHANNEL, is_outlet

Summary = Callable[[float], str]


def rated_summary(rule: ThresholdRule, subject: str, rating: float, unit: str, noun: str = "rating") -> Summary:
    def words(value: float) -> str:
        return f"{subject}: {value:g} {unit} is {value / rating:.0%} of its {rating:g} {unit} {noun} ({rule.name})"
    return words


class Ratings:
    def __init__(self, cfg: AlertsConfig) -> None:
        self.cfg = cfg
        self.pdus = {(p.site, p.device): p for p in cfg.pdus}
        self._rules: dict[tuple[str, float], tuple[tuple[ThresholdRule, Summary], ...]] = {}

    def capacity(self, key: SeriesKey, point: Point) -> tuple[tuple[ThresholdRule, Summary], ...]:
        """The capacity and overload thresholds of a phase or bank at this point's rating (none when unknown)."""
        if not self.cfg.capacity.enabled or key.measurement != CURRENT.name:
            return ()
        rating = rating_a(self.pdus.get((key.site, key.device)), key.channel, point.field_number("limit_a"))
        if rating is None:
            return ()
        cached = self._rules.get((key.id, rating))
        if cached is None:
            cap = self.cfg.capacity
            warn = ThresholdRule.above_limit(CAPACITY, key.id, cap.warn_fraction * rating, cap.for_s, "warning")
            over = ThresholdRule.above_limit(OVERLOAD, key.id, rating, cap.for_s, "critical")
            cached = tuple((r, rated_summary(r, key.id, rating, "A")) for r in (warn, over))
            self._rules[(key.id, rating)] = cached
        return cached

    def site_limits(self, key: SeriesKey) -> tuple[tuple[ThresholdRule, str, Summary], ...]:
        """The site-limit rules of the site whose main meter this series is, with the field they judge (watts)."""
        if not self.cfg.site_limit.enabled:
            return ()
        out = []
        for site in self.cfg.sites:
            if site.site == key.site and site.main == f"{key.device}.{key.channel}":
                for name, kw, severity in ((SITE_SOFT_LIMIT, site.soft_limit_kw, "warning"),
                                           (SITE_LIMIT, site.limit_kw, "critical")):
                    rule = ThresholdRule.above_limit(name, key.id, kw * 1000, self.cfg.site_limit.for_s, severity)
                    out.append((rule, "w", rated_summary(rule, f"site {site.site}", kw * 1000, "W", "limit")))
        return tuple(out)


@dataclass(frozen=True)
class Twin:
    """One direction of an A/B pair: what `pdu` would carry if `twin` failed."""

    pdu: PduRating
    twin: PduRating
    shared: tuple[tuple[str, ...], ...]  # per machine fed by both: the twin's sources ("device.channel")


class Redundancy:
    """The A/B check from the newest amps of each paired PDU's outlets, phases and total: for each PDU of a pair,
    its own load plus its twin's share of every machine fed by both, against its rating. A single-phase view: a
    three-phase pair is judged on the sum of its phases, which is approximate."""

    def __init__(self, cfg: AlertsConfig) -> None:
        self.cfg = cfg
        self.pdus = pdus = {(p.site, p.device): p for p in cfg.pdus}
        self.twins: list[Twin] = []
        for p in cfg.pdus:
            if p.pair is None:
                continue
            twin = pdus[(p.site, p.pair)]
            pairs = [(p, twin), (twin, p)] if twin.pair != p.device else [(p, twin)]
            for a, b in pairs:
                shared = []
                for m in cfg.machines:
                    if m.site != a.site:
                        continue
                    on_a = [s for s in m.sources if s.split(".", 1)[0] == a.device]
                    on_b = [s for s in m.sources if s.split(".", 1)[0] == b.device]
                    if on_a and on_b:
                        shared.append(tuple(on_b))
                self.twins.append(Twin(a, b, tuple(shared)))
        self.devices = {(t.pdu.site, t.pdu.device) for t in self.twins} | {(t.twin.site, t.twin.device)
                                                                          for t in self.twins}
        self.amps: dict[tuple[str, str], dict[str, float]] = {}  # (site, device) -> channel -> amps
        self.limits: dict[tuple[str, str], float] = {}  # the PDU's own limit_a, from its phases

    def watches(self, key: SeriesKey) -> bool:
        return self.cfg.redundancy.enabled and (key.site, key.device) in self.devices and (
            is_outlet(key.channel) or key.channel.startswith(PHASE_PREFIX) or key.channel == TOTAL_CHANNEL)

    def point(self, key: SeriesKey, point: Point) -> None:
        amps = point.field_number("a")
        if amps is None and (w := point.watts) is not None:
            amps = w / self.pdus[(key.site, key.device)].volts  # watched devices are all in [[inventory.pdus]]
        if amps is not None:
            self.amps.setdefault((key.site, key.device), {})[key.channel] = amps
        limit = point.field_number("limit_a")
        if key.channel.startswith(PHASE_PREFIX) and limit:
            self.limits[(key.site, key.device)] = limit

    def load_a(self, site: str, device: str) -> float | None:
        amps = self.amps.get((site, device), {})
        phases = [a for ch, a in amps.items() if ch.startswith(PHASE_PREFIX)]
        if phases:
            return sum(phases)
        if TOTAL_CHANNEL in amps:
            return amps[TOTAL_CHANNEL]
        outlets = [a for ch, a in amps.items() if is_outlet(ch)]
        return sum(outlets) if outlets else None

    def judgements(self) -> list[tuple[Twin, float, float]]:
        """(twin, amps it would carry, its rating) for every PDU of a pair whose load and rating are known."""
        out = []
        for t in self.twins:
            load = self.load_a(t.pdu.site, t.pdu.device)
            rating = t.pdu.rating_a or self.limits.get((t.pdu.site, t.pdu.device))
            if load is None or rating is None:
                continue
            twin_amps = self.amps.get((t.twin.site, t.twin.device), {})
            share = sum(twin_amps.get(s.split(".", 1)[1], 0.0) for sources in t.shared for s in sources)
            out.append((t, load + share, rating))
        return out

    def rule(self, t: Twin, rating: float) -> tuple[ThresholdRule, Summary]:
        rule = ThresholdRule.above_limit(REDUNDANCY, t.pdu.device, rating, self.cfg.redundancy.for_s, "critical")

        def words(value: float) -> str:
            return (f"{t.pdu.device} would carry {value:.1f} A if {t.twin.device} failed, above its {rating:g} A "
                    f"rating ({REDUNDANCY})")
        return rule, words
