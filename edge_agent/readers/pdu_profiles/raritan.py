"""Raritan PX2/PX3 (PDU2-MIB). Sensor values are one column indexed by (pdu, outlet or inlet, sensor type) and
scaled by a per-sensor decimal-digits column. Reads PDU 1 (a standalone PDU, or the first of a daisy chain): its
outlets, its inlets (summed into `total`), each inlet's poles as phases (inlet 1's as `phase-N`, inlet 2's as
`phase-2-N`) and its overcurrent protectors (breakers) as banks, each with its upper critical and warning thresholds
as `limit_a` and `warn_a` (scaled by the same digits as the reading)."""

from edge_agent.readers.pdu_profiles.base import Column, Profile, register

PDU2 = "1.3.6.1.4.1.13742.6"
OUTLET_NAME = f"{PDU2}.3.5.3.1.3.1"  # outletName.1.{outlet}
OUTLET_VALUE = f"{PDU2}.5.4.3.1.4.1"  # measurementsOutletSensorValue.1.{outlet}.{sensorType}
OUTLET_DIGITS = f"{PDU2}.3.5.4.1.7.1"  # outletSensorDecimalDigits.1.{outlet}.{sensorType}
INLET_VALUE = f"{PDU2}.5.2.3.1.4.1"  # measurementsInletSensorValue.1.{inlet}.{sensorType}
INLET_DIGITS = f"{PDU2}.3.3.4.1.7.1"  # inletSensorDecimalDigits.1.{inlet}.{sensorType}
POLE_VALUE = f"{PDU2}.5.2.4.1.4.1"  # measurementsInletPoleSensorValue.1.{inlet}.{pole}.{sensorType}
POLE_CONFIG = f"{PDU2}.3.3.6.1"  # inletPoleSensorConfigurationEntry
OCP_VALUE = f"{PDU2}.5.3.3.1.4.1"  # measurementsOverCurrentProtectorSensorValue.1.{ocp}.{sensorType}
OCP_CONFIG = f"{PDU2}.3.4.4.1"  # overCurrentProtectorSensorConfigurationEntry
DIGITS, UPPER_CRITICAL, UPPER_WARNING = 7, 23, 24  # columns of the sensor configuration entries
# SensorTypeEnumeration: rmsCurrent(1), rmsVoltage(4), activePower(5), apparentPower(6), powerFactor(7),
# activeEnergy(8, watt-hours)
CURRENT, VOLTAGE, POWER, APPARENT, POWER_FACTOR, ENERGY = ".1", ".4", ".5", ".6", ".7", ".8"


def _sensors(value_oid: str, config: str, fields: tuple[tuple[str, str], ...]) -> tuple[Column, ...]:
    """A table of sensors (poles, protectors): each field's reading, and the current's thresholds."""
    digits = f"{config}.{DIGITS}.1"
    return (*(Column(name, value_oid, suffix=suffix, digits_oid=digits) for name, suffix in fields),
            Column("limit_a", f"{config}.{UPPER_CRITICAL}.1", suffix=CURRENT, digits_oid=digits),
            Column("warn_a", f"{config}.{UPPER_WARNING}.1", suffix=CURRENT, digits_oid=digits))


RARITAN = register(Profile(
    name="raritan",
    outlets=(
        Column("name", OUTLET_NAME),
        Column("a", OUTLET_VALUE, suffix=CURRENT, digits_oid=OUTLET_DIGITS),
        Column("w", OUTLET_VALUE, suffix=POWER, digits_oid=OUTLET_DIGITS),
        Column("wh", OUTLET_VALUE, suffix=ENERGY, digits_oid=OUTLET_DIGITS),
    ),
    total_rows=(
        Column("w", INLET_VALUE, suffix=POWER, digits_oid=INLET_DIGITS),
        Column("wh", INLET_VALUE, suffix=ENERGY, digits_oid=INLET_DIGITS),
    ),
    phases=_sensors(POLE_VALUE, POLE_CONFIG, (("a", CURRENT), ("v", VOLTAGE), ("w", POWER), ("va", APPARENT),
                                              ("pf", POWER_FACTOR))),
    banks=_sensors(OCP_VALUE, OCP_CONFIG, (("a", CURRENT),)),
    optional_index_parts=1,  # the inlet: a one-inlet PDU's poles are phase-1..3
))
