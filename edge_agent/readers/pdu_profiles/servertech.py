"""Server Technology Sentry4 (Sentry4-MIB, PRO1/PRO2 and 4th-generation Switched/Smart CDUs). Outlets and input
cords are indexed by (unit, cord[, outlet]); this reads unit 1 (the master, or a standalone PDU). Each cord's lines
are its phases (cord 1's as `phase-N`, cord 2's as `phase-2-N`) and its branches (branch circuit breakers) its
banks, with their configured high warning and high alarm as `warn_a` and `limit_a`."""

from edge_agent.readers.pdu_profiles.base import Column, Profile, register

ST4 = "1.3.6.1.4.1.1718.4.1"
OUTLET_CONFIG = f"{ST4}.8.2.1"  # st4OutletConfigEntry
OUTLET_MONITOR = f"{ST4}.8.3.1"  # st4OutletMonitorEntry
CORD_MONITOR = f"{ST4}.3.3.1"  # st4InputCordMonitorEntry
LINE_MONITOR, LINE_EVENTS = f"{ST4}.4.3.1", f"{ST4}.4.4.1"  # st4LineMonitorEntry, st4LineEventConfigEntry
BRANCH_MONITOR, BRANCH_EVENTS = f"{ST4}.7.3.1", f"{ST4}.7.4.1"  # st4BranchMonitorEntry, st4BranchEventConfigEntry


def _currents(monitor: str, events: str) -> tuple[Column, ...]:
    return (
        Column("a", f"{monitor}.3.1", 0.01),  # st4LineCurrent / st4BranchCurrent, hundredths of amps
        Column("warn_a", f"{events}.4.1", 0.1),  # ...CurrentHighWarning, tenths of amps
        Column("limit_a", f"{events}.5.1", 0.1),  # ...CurrentHighAlarm, tenths of amps
    )


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
    phases=_currents(LINE_MONITOR, LINE_EVENTS),
    banks=_currents(BRANCH_MONITOR, BRANCH_EVENTS),
    optional_index_parts=1,  # the cord
))
