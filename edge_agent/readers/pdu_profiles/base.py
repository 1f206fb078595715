"""A PDU profile: which OIDs a vendor's MIB keeps per-outlet and device-total readings under, and their scales.

Profiles are data, not code: adding a vendor is a module with one `Profile(...)` and `register`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    """One column of the outlet table: `{oid}.{index}` holds outlet `index`'s value; stored as `field`."""

    field: str  # w, a, wh, or "name" (the outlet's label, kept as `outlet_name`)
    oid: str
    scale: float = 1.0


@dataclass(frozen=True)
class Scalar:
    """One device-wide value for the `total` channel."""

    field: str
    oid: str
    scale: float = 1.0


@dataclass(frozen=True)
class Profile:
    name: str
    outlets: tuple[Column, ...] = ()
    total: tuple[Scalar, ...] = ()
    total_is_sum_of_outlets: bool = False  # for MIBs with no device-total object (UPS-MIB)
    fallback: Profile | None = None  # tried when `outlets` and `total` answer nothing (older firmware / models)
    notes: str = field(default="", compare=False)


PROFILES: dict[str, Profile] = {}


def register(profile: Profile) -> Profile:
    PROFILES[profile.name] = profile
    return profile
