"""Real client IP (spec 10): X-Forwarded-For, then X-Real-IP, then the connection's peer.

Forwarding headers are believed only when the peer is a configured trusted proxy (DESIGN
§7: none by default, loopback included), so a client talking to us directly cannot name
itself someone else to dodge the per-IP limit. X-Forwarded-For is read from the right:
each proxy appends the address it saw, so the entries left of the last trusted proxy may
be whatever the client wrote. The client is the rightmost address that is not a trusted
proxy, which is the first hop whenever the chain is honest.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.rest.middleware._asgi import header, header_values, state

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(text: str) -> Address | None:
    """An address from a header entry: bare, `[v6]:port` or `v4:port`; None if invalid."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class RealIPMiddleware:
    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[str] = ()) -> None:
        self.app = app
        self.trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(p, strict=False) for p in trusted_proxies)

    def is_trusted(self, addr: Address | None) -> bool:
        return addr is not None and any(
            addr.version == net.version and addr in net for net in self.trusted)

    def client_ip(self, scope: Scope) -> tuple[str, str | None]:
        """The client address, and the forwarded scheme when a trusted proxy gave one."""
        client = scope.get("client")
        peer_text = client[0] if client else ""
        if not self.trusted:  # nothing to believe: the peer it is
            return peer_text, None
        peer = parse_ip(peer_text)
        if not self.is_trusted(peer):
            return (str(peer) if peer else peer_text), None
        proto = (header(scope, b"x-forwarded-proto") or "").split(",")[0].strip().lower()
        forwarded = ",".join(header_values(scope, b"x-forwarded-for"))
        hops = [h for h in forwarded.split(",") if h.strip()]
        found: Address | None = None
        for hop in reversed(hops):
            addr = parse_ip(hop)
            if addr is None:
                break  # a malformed entry: nothing left of it can be trusted
            found = addr
            if not self.is_trusted(addr):
                break
        if found is None and not hops:
            found = parse_ip(header(scope, b"x-real-ip") or "")
        chosen = found or peer
        return str(chosen), proto if proto in ("http", "https") else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            ip, proto = self.client_ip(scope)
            st = state(scope)
            st["client_ip"] = ip
            if proto:
                st["forwarded_proto"] = proto
            client = scope.get("client")
            if client and client[0] != ip:
                scope["client"] = (ip, 0)
        await self.app(scope, receive, send)
