"""SNMP v1 and v2c requests (GET, GETNEXT, GETBULK) with pysnmp's message types and BER codec, over an asyncio UDP
socket connected to the PDU.

Why not pysnmp's `hlapi.v1arch`, which does the same: importing it also loads the SNMPv3 engine, the MIB builder and
the transport targets (about 2 MB of an agent that has to stay under 40 MB), none of which a community request needs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api
from pysnmp.proto.error import ProtocolError
from pysnmp.proto.rfc1902 import Null, ObjectName

VERSIONS = {"1": api.SNMP_VERSION_1, "2c": api.SNMP_VERSION_2C}
TIMED_OUT = "No SNMP response received before timeout"  # pysnmp's words, which logs and operators already know


class PollError(RuntimeError):
    """The PDU did not answer usefully (timeout, SNMP error status, an SNMPv3 engine's error)."""


@dataclass(frozen=True)
class Response:
    error_status: int
    error_name: str  # "noSuchName", ... ("" when error_status is 0)
    var_binds: list[tuple[ObjectName, Any]]


class _Replies(asyncio.DatagramProtocol):
    """Hands each response to the request waiting for its request-id; anything else is dropped, as pysnmp does."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.waiting: dict[int, asyncio.Future[Any]] = {}

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            if api.decodeMessageVersion(data) != self.version:
                return
            p_mod = api.PROTOCOL_MODULES[self.version]
            message, _ = decoder.decode(data, asn1Spec=p_mod.Message())
            pdu = p_mod.apiMessage.get_pdu(message)
            request_id = int(p_mod.apiPDU.get_request_id(pdu))
        except (PyAsn1Error, ProtocolError, ValueError):
            return  # not an SNMP message of ours: the request times out if nothing better comes
        future = self.waiting.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(pdu)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable and the like: the same as no answer, so the request retries, then times out


class CommunityClient:
    """One PDU's v1/v2c requests, on the loop that opened it (`await CommunityClient.open(...)`)."""

    def __init__(self, community: str, version: str, timeout_s: float, retries: int) -> None:
        self.community = community
        self.version = VERSIONS[version]
        self.timeout_s, self.retries = timeout_s, retries
        self._transport: asyncio.DatagramTransport | None = None
        self._replies = _Replies(self.version)

    @classmethod
    async def open(cls, host: str, port: int, community: str, version: str, timeout_s: float,
                   retries: int) -> CommunityClient:
        client = cls(community, version, timeout_s, retries)
        loop = asyncio.get_running_loop()
        client._transport, _ = await loop.create_datagram_endpoint(lambda: client._replies,
                                                                   remote_addr=(host, port))
        return client

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

    async def request(self, kind: str, oids: list[str], max_repetitions: int = 0) -> Response:
        """A `get`, `next` or `bulk` (v2c only) of every OID at once; PollError when no answer came after the
        retries. The same request-id and bytes go out on each retry, so a late answer to the first still counts."""
        assert self._transport is not None, "CommunityClient.open() first"
        request_id, data = self._message(kind, oids, max_repetitions)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies.waiting[request_id] = future
        try:
            for _ in range(self.retries + 1):
                self._transport.sendto(data)
                try:
                    pdu = await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
                    break
                except TimeoutError:
                    continue
            else:
                raise PollError(TIMED_OUT)
        finally:
            self._replies.waiting.pop(request_id, None)
        p_mod: Any = api.PROTOCOL_MODULES[self.version]
        status = p_mod.apiPDU.get_error_status(pdu)
        return Response(int(status), status.prettyPrint() if status else "", list(p_mod.apiPDU.get_varbinds(pdu)))
