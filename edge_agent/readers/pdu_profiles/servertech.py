"""Server Technology Sentry4 (Sentry4-MIB, PRO1/PRO2 and 4th-generation Switched/Smart CDUs). Outlets and input
cords are indexed by (unit, cord[, outlet]); this reads unit 1 (the master, or a standalone PDU)."""

from edge_agent.readers.pdu_profiles.base import Column, Profile, register

ST4 = "1.3.6.1.4.1.1718.4.1"
OUTLET_CONFIG = f"{ST4}.8.2.1"  # st4OutletConfigEntry
OUTLET_MONITOR = f"{ST4}.8.3.1"  # st4OutletMonitorEntry
CORD_MONITOR = f"{ST4}.3.3.1"  # st4InputCordMonitorEntry

SERVERTECH = register(Profile(
    name="servertech",
    outlets=(
        Column("name", f"{OUTLET_CONFIG}.3.1"),  # st4OutletName
        Column("a", f"{OUTLET_MONITOR}.3.1", 0.01),  # st4OutletCurrent, hundredths of amps
        Column("w", f"{OUTLET_MONITOR}.7.1"),  # st4OutletActivePower, watts
        Column("wh", f"{OUTLET_MONITOR}.14.1"),  # st4OutletEnergy, watt-hours
    ),
    total_rows=(
        Column("w", f"{CORD_MONITOR}.3.1"),  # st4InputCordActivePower, watts
        Column("wh", f"{CORD_MONITOR}.10.1", 100.0),  # st4InputCordEnergy, tenths of kWh
    ),
    optional_index_parts=1,  # the cord
))
