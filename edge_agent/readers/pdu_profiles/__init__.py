"""PDU profiles by name; importing this package registers the built-in ones."""

from edge_agent.readers.pdu_profiles import apc, raritan, servertech, ups_mib
from edge_agent.readers.pdu_profiles.base import PROFILES, Column, Profile, Scalar, register

__all__ = ["PROFILES", "Column", "Profile", "Scalar", "apc", "raritan", "register", "servertech", "ups_mib"]
