"""`[[inventory.machines]]`: which machine hangs on which sources (PDU outlets, BMCs), for the agent (it tags points
with `machine`) and for `powerhub inventory` (it reports what is mapped and what is not). `[[inventory.pdus]]` and
`[[inventory.sites]]`: what the electrics can carry, for the hub's capacity, redundancy and site-limit alerts."""

from __future__ import annotations

from dataclasses import dataclass

from telemetry.config import REQUIRED, ConfigError, Section, did_you_mean
from telemetry.names import NameError_, check_name
from telemetry.series import BANK_PREFIX


@dataclass(frozen=True)
class Machine:
    name: str
    site: str
    sources: tuple[str, ...]  # "device.channel" of the machine's site


@dataclass(frozen=True)
class PduRating:
    """A PDU's feed: what its input may carry (`rating_a`; None: each phase's and bank's own `limit_a`), its banks'
    ratings where they differ from the PDU's own, and its twin on the other feed (`pair`) for the A/B check."""

    site: str
    device: str
    rating_a: float | None
    banks_a: dict[str, float]
    pair: str | None
    volts: float  # to turn watts into amps where a reading has no current


@dataclass(frozen=True)
class SiteLimit:
    """A site's contracted limit, judged on its main meter (`main`, device.channel)."""

    site: str
    main: str
    limit_kw: float
    soft_limit_kw: float


def rating_a(pdu: PduRating | None, channel: str, limit_a: float | None) -> float | None:
    """What a PDU's phase or bank may carry: `banks_a` for a bank, `rating_a` for a phase, else the PDU's own
    configured overload threshold (the reading's `limit_a`); None when nothing says."""
    if pdu is not None:
        if channel.startswith(BANK_PREFIX):
            bank = pdu.banks_a.get(channel.removeprefix(BANK_PREFIX))
            if bank is not None:
                return bank
        elif pdu.rating_a is not None:
            return pdu.rating_a
    return limit_a if limit_a is not None and limit_a > 0 else None


DEFAULT_VOLTS = 230.0
SOFT_LIMIT_FRACTION = 0.9
INVENTORY_KEYS = ("agents", "hub", "machines", "pdus", "sites")


def parse_machines(top: Section) -> list[Machine]:
    """Every `[[inventory.machines]]` entry; `agents` and `hub` are `powerhub mqtt-acl`'s, and checked there."""
    out: list[Machine] = []
    inventory = Section(top.data.get("inventory"), "inventory")
    for key in inventory.data:
        if key not in INVENTORY_KEYS:
            raise inventory.error(key, f"unknown key{did_you_mean(key, INVENTORY_KEYS)}")
    for sec in inventory.tables("machines"):
        name, site = sec.name("name"), sec.name("site")
        sources = sec.str_list("sources", [])
        for i, source in enumerate(sources):
            _device_channel(sec, f"sources[{i}]", source)
        sec.finish()
        out.append(Machine(name, site, tuple(sources)))
    return out


def machines_by_source(machines: list[Machine], site: str) -> dict[str, str]:
    """`{"device.channel": machine}` for one site: the agent's lookup when it stamps points."""
    return {source: m.name for m in machines if m.site == site for source in m.sources}


def _device_channel(sec: Section, key: str, value: str) -> str:
    device, _, channel = value.partition(".")
    try:
        check_name("device", device)
        check_name("channel", channel)
    except NameError_ as exc:
        raise sec.error(key, f"must be device.channel: {exc}") from None
    return value


def _positive(sec: Section, key: str, default: float | None) -> float | None:
    """A rating: a number greater than 0 (a rating of 0 would make every reading an overload)."""
    return sec.number(key, default, positive=True)


def parse_pdus(top: Section) -> list[PduRating]:
    out: list[PduRating] = []
    for sec in Section(top.data.get("inventory"), "inventory").tables("pdus"):
        site, device = sec.name("site"), sec.name("device")
        rating = _positive(sec, "rating_a", None)
        banks = sec.table("banks_a")
        banks_a = {}
        for bank in list(banks.data):
            if not bank.isdigit():
                raise banks.error(bank, "must be a bank number (1, 2, ...)")
            banks_a[bank] = float(_positive(banks, bank, None))  # type: ignore[arg-type]
        banks.finish()
        pair = sec.string("pair", None)
        if pair is not None:
            pair = sec.name("pair")
            if pair == device:
                raise sec.error("pair", f"a PDU cannot be its own twin ({device!r})")
        volts = _positive(sec, "volts", DEFAULT_VOLTS)
        sec.finish()
        out.append(PduRating(site, device, rating, banks_a, pair, volts or DEFAULT_VOLTS))
    known = {(p.site, p.device) for p in out}
    for i, p in enumerate(out):
        if p.pair is not None and (p.site, p.pair) not in known:
            raise ConfigError(f"inventory.pdus[{i}].pair: {p.pair!r} is not a PDU of site {p.site!r} in "
                              "[[inventory.pdus]]")
    return out


def parse_sites(top: Section) -> list[SiteLimit]:
    out: list[SiteLimit] = []
    for sec in Section(top.data.get("inventory"), "inventory").tables("sites"):
        site = sec.name("name")
        main = _device_channel(sec, "main", sec.string("main"))
        limit = _positive(sec, "limit_kw", REQUIRED)
        assert limit is not None
        soft = _positive(sec, "soft_limit_kw", round(SOFT_LIMIT_FRACTION * limit, 6))
        assert soft is not None
        if soft > limit:
            raise sec.error("soft_limit_kw", f"must not be above limit_kw ({limit:g}), not {soft:g}")
        sec.finish()
        out.append(SiteLimit(site, main, limit, soft))
    return out
