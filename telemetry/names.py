"""Names (site, device, channel) and series ids, SPEC.md section 1."""

from __future__ import annotations

import re
from dataclasses import dataclass

from telemetry.errors import PowerhubError
from telemetry.series import measurement_of

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class NameError_(PowerhubError, ValueError):
    """A site, device or channel name outside `[a-z0-9][a-z0-9_-]{0,62}`, or a malformed series id."""


def check_name(kind: str, value: object) -> str:
    """Return `value` if it is a valid name, else raise NameError_ saying which part is wrong."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise NameError_(f"{kind} {value!r} must match [a-z0-9][a-z0-9_-]{{0,62}}")
    return value


@dataclass(frozen=True, slots=True, order=True)
class SeriesKey:
    """One series: `(site, device, channel)`; its id is `site.device.channel`."""

    site: str
    device: str
    channel: str

    def __post_init__(self) -> None:
        check_name("site", self.site)
        check_name("device", self.device)
        check_name("channel", self.channel)

    @property
    def id(self) -> str:
        return f"{self.site}.{self.device}.{self.channel}"

    @property
    def measurement(self) -> str:
        """`load`, `energy`, `current`, `rollup` or `power`, from the channel's name (telemetry.series)."""
        return measurement_of(self.channel).name

    @property
    def main_field(self) -> str:
        """The field that carries the series' value: `w` for power, `value` for load and energy, `a` for current."""
        return measurement_of(self.channel).field

    def __str__(self) -> str:
        return self.id


def parse_series_id(series_id: str) -> SeriesKey:
    """`lab.mainmeter.power` -> SeriesKey; names cannot hold a dot, so the split is unambiguous."""
    parts = series_id.split(".")
    if len(parts) != 3:
        raise NameError_(f"series id {series_id!r} must be site.device.channel")
    return SeriesKey(*parts)
