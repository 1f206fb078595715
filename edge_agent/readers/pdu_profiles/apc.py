"""APC PowerNet-MIB. rPDU2 (`.318.1.1.26`): metered outlets (AP86xx), the device's power and energy, its input
phases and breaker banks with their configured thresholds;
older rPDU (`.318.1.1.12`): device power only, for models whose outlets are switched but not metered."""

from edge_agent.readers.pdu_profiles.base import Column, Profile, Scalar, register

RPDU2 = "1.3.6.1.4.1.318.1.1.26"
RPDU = "1.3.6.1.4.1.318.1.1.12"

APC_LEGACY = Profile(
    name="apc-rpdu",
    total=(Scalar("w", f"{RPDU}.1.16.0"),),  # rPDUIdentDevicePowerWatts
)

APC = register(Profile(
    name="apc",
    outlets=(
        Column("name", f"{RPDU2}.9.4.3.1.3"),  # rPDU2OutletMeteredStatusName
        Column("a", f"{RPDU2}.9.4.3.1.6", 0.1),  # ...Current, tenths of amps
        Column("w", f"{RPDU2}.9.4.3.1.7"),  # ...Power, watts
        Column("wh", f"{RPDU2}.9.4.3.1.11", 100.0),  # ...Energy, tenths of kWh
    ),
    total=(
        Scalar("w", f"{RPDU2}.4.3.1.5.1", 10.0),  # rPDU2DeviceStatusPower, hundredths of kW
        Scalar("wh", f"{RPDU2}.4.3.1.9.1", 100.0),  # rPDU2DeviceStatusEnergy, tenths of kWh
    ),
    # rPDU2PhaseStatusTable (.6.3) and rPDU2PhaseConfigTable (.6.1), indexed alike; the same for banks (.8.3, .8.1).
    phases=(
        Column("a", f"{RPDU2}.6.3.1.5", 0.1),  # rPDU2PhaseStatusCurrent, tenths of amps
        Column("v", f"{RPDU2}.6.3.1.6"),  # ...Voltage, volts
        Column("w", f"{RPDU2}.6.3.1.7", 10.0),  # ...Power, hundredths of kW
        Column("va", f"{RPDU2}.6.3.1.8", 10.0),  # ...ApparentPower, hundredths of kVA
        Column("pf", f"{RPDU2}.6.3.1.9", 0.01),  # ...PowerFactor, hundredths
        Column("warn_a", f"{RPDU2}.6.1.1.6"),  # rPDU2PhaseConfigNearOverloadCurrentThreshold, amps
        Column("limit_a", f"{RPDU2}.6.1.1.7"),  # ...OverloadCurrentThreshold, amps
    ),
    banks=(
        Column("a", f"{RPDU2}.8.3.1.5", 0.1),  # rPDU2BankStatusCurrent, tenths of amps
        Column("warn_a", f"{RPDU2}.8.1.1.6"),  # rPDU2BankConfigNearOverloadCurrentThreshold, amps
        Column("limit_a", f"{RPDU2}.8.1.1.7"),  # ...OverloadCurrentThreshold, amps
    ),
    fallback=APC_LEGACY,
))
