"""SNMP v1 and v2c requests (GET, GETNEXT, GETBULK) with pysnmp's message types and BER codec, over a UDP socket
connected to the PDU, in the calling reader's thread.

Why not pysnmp's `hlapi.v1arch`, which does the same: importing it also loads the SNMPv3 engine, the MIB builder and
the transport targets, and it runs on asyncio (together about 5 MB of an agent that has to stay under 40 MB), none of
which a community request needs. A blocking socket per reader keeps what asyncio gave: a PDU that does not answer
holds up only its own reader.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api
from pysnmp.proto.error import ProtocolError
from pysnmp.proto.rfc1902 import Null, ObjectName

from telemetry.errors import PowerhubError

VERSIONS = {"1": api.SNMP_VERSION_1, "2c": api.SNMP_VERSION_2C}
TIMED_OUT = "No SNMP response received before timeout"  # pysnmp's words, which logs and operators already know


class PollError(PowerhubError, RuntimeError):
    """The PDU did not answer usefully (timeout, SNMP error status, an SNMPv3 engine's error)."""


@dataclass(frozen=True)
class Response:
    error_status: int
    error_name: str  # "noSuchName", ... ("" when error_status is 0)
    var_binds: list[tuple[ObjectName, Any]]


def _response_pdu(data: bytes, version: int, request_id: int) -> Any | None:
    """The PDU of `data` if it is the SNMP `version` answer to `request_id`; None for anything else (dropped, as
    pysnmp does: a late answer to another request, or not SNMP at all)."""
    try:
        if api.decodeMessageVersion(data) != version:
            return None
        p_mod = api.PROTOCOL_MODULES[version]
        message, _ = decoder.decode(data, asn1Spec=p_mod.Message())
        pdu = p_mod.apiMessage.get_pdu(message)
        return pdu if int(p_mod.apiPDU.get_request_id(pdu)) == request_id else None
    except (PyAsn1Error, ProtocolError, ValueError):
        return None


class CommunityClient:
    """One PDU's v1/v2c requests, from one reader's thread."""

    def __init__(self, sock: socket.socket, community: str, version: str, timeout_s: float, retries: int) -> None:
        self._sock = sock
        self.community = community
        self.version = VERSIONS[version]
        self.timeout_s, self.retries = timeout_s, retries

    @classmethod
    def open(cls, host: str, port: int, community: str, version: str, timeout_s: float,
             retries: int) -> CommunityClient:
        """Raises OSError for a name that does not resolve or an address the host cannot reach."""
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.connect(address)  # the kernel then passes us only the PDU's datagrams
        except OSError:
            sock.close()
            raise
        return cls(sock, community, version, timeout_s, retries)

    def close(self) -> None:
        self._sock.close()

    def _message(self, kind: str, oids: list[str], max_repetitions: int) -> tuple[int, bytes]:
        p_mod: Any = api.PROTOCOL_MODULES[self.version]
        if kind == "bulk":
            pdu, pdu_api = p_mod.GetBulkRequestPDU(), p_mod.apiBulkPDU
            pdu_api.set_defaults(pdu)
            pdu_api.set_non_repeaters(pdu, 0)
            pdu_api.set_max_repetitions(pdu, max_repetitions)
        else:
            pdu = {"get": p_mod.GetRequestPDU, "next": p_mod.GetNextRequestPDU}[kind]()
            pdu_api = p_mod.apiPDU
            pdu_api.set_defaults(pdu)
        pdu_api.set_varbinds(pdu, [(ObjectName(oid), Null("")) for oid in oids])
        message = p_mod.Message()
        p_mod.apiMessage.set_defaults(message)
        p_mod.apiMessage.set_community(message, self.community)
        p_mod.apiMessage.set_pdu(message, pdu)
        return int(pdu_api.get_request_id(pdu)), encoder.encode(message)

    def _send(self, data: bytes) -> None:
        try:
            self._sock.send(data)
        except ConnectionRefusedError:  # an ICMP error left by an earlier datagram, reported (and cleared) here
            self._sock.send(data)

    def _answer(self, request_id: int, timeout_s: float) -> Any | None:
        """The PDU of the first datagram answering `request_id` within `timeout_s`; None if none came."""
        deadline = time.monotonic() + timeout_s
        while (remaining_s := deadline - time.monotonic()) > 0:
            self._sock.settimeout(remaining_s)
            try:
                data = self._sock.recv(65_535)
            except TimeoutError:
                return None
            except ConnectionRefusedError:
                continue  # ICMP port unreachable: the same as no answer, so the request retries, then times out
            if (pdu := _response_pdu(data, self.version, request_id)) is not None:
                return pdu
        return None

    def request(self, kind: str, oids: list[str], max_repetitions: int = 0) -> Response:
        """A `get`, `next` or `bulk` (v2c only) of every OID at once; PollError when no answer came after the
        retries. The same request-id and bytes go out on each retry, so a late answer to the first still counts."""
        request_id, data = self._message(kind, oids, max_repetitions)
        try:
            for _ in range(self.retries + 1):
                self._send(data)
                if (pdu := self._answer(request_id, self.timeout_s)) is not None:
                    break
            else:
                raise PollError(TIMED_OUT)
        except OSError as exc:  # no route to the PDU, and the like
            raise PollError(f"cannot reach it: {exc}") from exc
        p_mod: Any = api.PROTOCOL_MODULES[self.version]
        status = p_mod.apiPDU.get_error_status(pdu)
        return Response(int(status), status.prettyPrint() if status else "", list(p_mod.apiPDU.get_varbinds(pdu)))
