"""A PDU profile: which OIDs a vendor's MIB keeps per-outlet and device-total readings under, and their scales.

Profiles are data, not code: adding a vendor is a module with one `Profile(...)` and `register`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    """One column of a table: `{oid}.{index}{suffix}` holds row `index`'s value; stored as `field`.

    `suffix` picks one sensor from MIBs that index a column by (row, sensor type), as Raritan's PDU2-MIB does.
    `digits_oid` names a column, indexed like this one, holding the value's decimal digits: the value is then
    scaled by `scale / 10**digits` (Raritan again: the digits are configuration, read once per session).
    """

    field: str  # w, a, wh, va, pf, v, limit_a, warn_a, or "name" (the outlet's label, kept as `name`)
    oid: str
    scale: float = 1.0
    suffix: str = ""
    digits_oid: str | None = None


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
    total_rows: tuple[Column, ...] = ()  # a table summed into `total` (inlets / input cords)
    total_is_sum_of_outlets: bool = False  # for MIBs with no device-total object (UPS-MIB)
    # Input phases (lines) and breaker banks (branch circuits), as `phase-N` and `bank-N` with `a` (required) and
    # where the MIB has them `w`, `va`, `pf`, `v`, and the PDU's own thresholds `limit_a`, `warn_a` (SPEC.md section 1).
    phases: tuple[Column, ...] = ()
    banks: tuple[Column, ...] = ()
    # Leading index parts left out of the channel when they are 1: Sentry4 indexes outlets by (cord, outlet), and a
    # one-cord PDU's outlets should be outlet-1..outlet-N as on its label (cord 2's are outlet-2-N).
    optional_index_parts: int = 0
    fallback: Profile | None = None  # tried when `outlets` and `total` answer nothing (older firmware / models)
    notes: str = field(default="", compare=False)


PROFILES: dict[str, Profile] = {}


def register(profile: Profile) -> Profile:
    PROFILES[profile.name] = profile
    return profile
