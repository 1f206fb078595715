"""SNMPv3 (USM) requests through pysnmp's v3arch engine, which runs on asyncio: every SNMPv3 reader of a process
uses one loop thread (`SnmpLoop`), and waits there for its own requests only. Imported only when a reader is
configured for SNMPv3: the engine, the MIBs it loads and asyncio cost about 5 MB, which a v1/v2c agent does not pay
(`snmp_community`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pysnmp.hlapi.v3arch import asyncio as v3arch
from pysnmp.hlapi.v3arch.asyncio import auth
from pysnmp.proto.rfc1902 import Null, ObjectName

from edge_agent.readers.snmp_community import PollError, Response

if TYPE_CHECKING:
    from edge_agent.readers.snmp_pdu import V3User

AUTH_PROTOCOLS = {
    "md5": auth.usmHMACMD5AuthProtocol, "sha": auth.usmHMACSHAAuthProtocol,
    "sha224": auth.usmHMAC128SHA224AuthProtocol, "sha256": auth.usmHMAC192SHA256AuthProtocol,
    "sha384": auth.usmHMAC256SHA384AuthProtocol, "sha512": auth.usmHMAC384SHA512AuthProtocol,
}
PRIV_PROTOCOLS = {
    "des": auth.usmDESPrivProtocol, "aes": auth.usmAesCfb128Protocol,
    "aes192": auth.usmAesCfb192Protocol, "aes256": auth.usmAesCfb256Protocol,
}
# One engine per SNMPv3 user, since an engine holds one set of keys per user name; all made on the SNMP loop.
_ENGINES: dict[V3User, v3arch.SnmpEngine] = {}
T = TypeVar("T")


class SnmpLoop:
    """The process's SNMPv3 loop thread, made on first use."""

    _shared: ClassVar[SnmpLoop | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="snmp", daemon=True).start()

    @classmethod
    def shared(cls) -> SnmpLoop:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait for its result (or exception) in the calling reader's thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


class UsmClient:
    """One PDU's SNMPv3 requests, made from a reader's thread and run on the shared loop."""

    def __init__(self, engine: v3arch.SnmpEngine, user: V3User, target: v3arch.UdpTransportTarget) -> None:
        self.engine, self.target = engine, target
        self.context = v3arch.ContextData(contextName=user.context)
        self.user_data = v3arch.UsmUserData(
            user.user, user.auth_key, user.priv_key,
            authProtocol=AUTH_PROTOCOLS[user.auth_protocol] if user.auth_protocol else auth.usmNoAuthProtocol,
            privProtocol=PRIV_PROTOCOLS[user.priv_protocol] if user.priv_protocol else auth.usmNoPrivProtocol,
        )

    @classmethod
    def open(cls, host: str, port: int, user: V3User, timeout_s: float, retries: int) -> UsmClient:
        return SnmpLoop.shared().call(cls._open(host, port, user, timeout_s, retries))

    @classmethod
    async def _open(cls, host: str, port: int, user: V3User, timeout_s: float, retries: int) -> UsmClient:
        if user not in _ENGINES:
            _ENGINES[user] = v3arch.SnmpEngine()
        target = await v3arch.UdpTransportTarget.create((host, port), timeout=timeout_s, retries=retries)
        return cls(_ENGINES[user], user, target)

    def close(self) -> None:
        pass  # the engine and its socket are shared by every reader of the same SNMPv3 user

    def request(self, kind: str, oids: list[str], max_repetitions: int = 0) -> Response:
        """As `CommunityClient.request`; numeric OIDs and raw values both ways (no MIB lookups)."""
        return SnmpLoop.shared().call(self._request(kind, oids, max_repetitions))

    async def _request(self, kind: str, oids: list[str], max_repetitions: int) -> Response:
        head: list[Any] = [self.engine, self.user_data, self.target, self.context]
        if kind == "bulk":
            head += [0, max_repetitions]
        cmd = {"get": v3arch.get_cmd, "next": v3arch.next_cmd, "bulk": v3arch.bulk_cmd}[kind]
        indication, status, _, var_binds = await cmd(*head, *[(ObjectName(oid), Null("")) for oid in oids],
                                                     lookupMib=False)
        if indication:
            raise PollError(str(indication))
        return Response(int(status), status.prettyPrint() if status else "", [(oid, value) for oid, value in var_binds])
