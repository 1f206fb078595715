"""Who may use the web app. `web.allow` is checked against the client's real address: the socket's, or, when the
socket's is one of `web.trusted_proxies`, the right-most `X-Forwarded-For` hop that is not a trusted proxy (hops
further left were written by the client and prove nothing). When `web.tokens` is set, data routes also need a bearer
token whose SHA-256 is listed there (tokens are never stored, only their hashes); `?token=` serves EventSource,
which cannot send headers. The page, its static files, /healthz and the OpenAPI document stay open.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

from flask import request

from web.errors import abort_json

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
OPEN_PATHS = ("/", "/healthz", "/api/v1/openapi.json")
HASH_PREFIX = "sha256:"


def new_token() -> tuple[str, str]:
    """A random token and its config form `sha256:<hex>`."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return HASH_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def _parse(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip().split("%")[0])
    except ValueError:
        return None


def client_address(remote: str, forwarded_for: str | None, trusted: tuple[Network, ...]) -> Address | None:
    """The address to judge, or None when it cannot be told (a garbled address or header)."""
    addr = _parse(remote)
    if addr is None or not forwarded_for or not any(addr in net for net in trusted):
        return addr
    for hop in reversed(forwarded_for.split(",")):
        hop_addr = _parse(hop)
        if hop_addr is None:
            return None
        if not any(hop_addr in net for net in trusted):
            return hop_addr
        addr = hop_addr
    return addr  # every hop is a trusted proxy: the request came from one of them


def check(allow: tuple[Network, ...], trusted: tuple[Network, ...], token_hashes: frozenset[str],
          prefix: str) -> None:
    """Abort with 403 (address) or 401 (token) unless the request may go on."""
    addr = client_address(request.remote_addr or "", request.headers.get("X-Forwarded-For"), trusted)
    if addr is None or not any(addr in net for net in allow):
        abort_json(403, "client address not allowed")
    if not token_hashes:
        return
    path = request.path[len(prefix):] if prefix and request.path.startswith(prefix) else request.path
    if path in OPEN_PATHS or path.startswith("/static/") or request.method == "OPTIONS":
        return
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else request.args.get("token", "")
    given = token_hash(token) if token else ""
    if not any(hmac.compare_digest(given, h) for h in token_hashes):
        abort_json(401, "a valid bearer token is required (Authorization: Bearer ...)")
