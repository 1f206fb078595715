"""Reader kinds; importing this package registers every built-in kind."""

from edge_agent.readers import blip_serial, host_load, ipmi_dcmi, simulated, snmp_pdu
from edge_agent.readers.base import READERS, Reader, ReaderContext, reader_from_config, register

__all__ = [
    "READERS", "Reader", "ReaderContext", "blip_serial", "host_load", "ipmi_dcmi", "reader_from_config", "register",
    "simulated", "snmp_pdu",
]
