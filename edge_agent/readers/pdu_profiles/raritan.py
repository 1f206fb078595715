"""Raritan PX2/PX3 (PDU2-MIB). Sensor values are one column indexed by (pdu, outlet or inlet, sensor type) and
scaled by a per-sensor decimal-digits column. Reads PDU 1 (a standalone PDU, or the first of a daisy chain)."""

from edge_agent.readers.pdu_profiles.base import Column, Profile, register

PDU2 = "1.3.6.1.4.1.13742.6"
OUTLET_NAME = f"{PDU2}.3.5.3.1.3.1"  # outletName.1.{outlet}
OUTLET_VALUE = f"{PDU2}.5.4.3.1.4.1"  # measurementsOutletSensorValue.1.{outlet}.{sensorType}
OUTLET_DIGITS = f"{PDU2}.3.5.4.1.7.1"  # outletSensorDecimalDigits.1.{outlet}.{sensorType}
INLET_VALUE = f"{PDU2}.5.2.3.1.4.1"  # measurementsInletSensorValue.1.{inlet}.{sensorType}
INLET_DIGITS = f"{PDU2}.3.3.4.1.7.1"  # inletSensorDecimalDigits.1.{inlet}.{sensorType}
# SensorTypeEnumeration: rmsCurrent(1), activePower(5), activeEnergy(8, watt-hours)
CURRENT, POWER, ENERGY = ".1", ".5", ".8"

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
))
