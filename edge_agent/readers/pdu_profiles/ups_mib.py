"""UPS-MIB (RFC 1628): the output table `upsOutputTable`, one row per output line; no device-total object,
so `total` is the sum of the lines."""

from edge_agent.readers.pdu_profiles.base import Column, Profile, register

OUTPUT = "1.3.6.1.2.1.33.1.4.4.1"

UPS_MIB = register(Profile(
    name="ups-mib",
    outlets=(
        Column("a", f"{OUTPUT}.3", 0.1),  # upsOutputCurrent, tenths of amps
        Column("w", f"{OUTPUT}.4"),  # upsOutputPower, watts
    ),
    total_is_sum_of_outlets=True,
))
