"""Who is on the other end: the client address that per-address limits count.

Behind a reverse proxy every connection comes from the proxy's address, so
per-address limits would lump all users together. The proxy says who the
client is in ``X-Forwarded-For``, but so can anyone else: the header is only
believed when the peer is a trusted proxy (uvicorn's ``--forwarded-allow-ips``
convention: addresses, networks or ``"*"``). uvicorn applies that setting to
the ASGI scope itself; `trusted_proxies` here is for servers that do not.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """A set of proxy addresses and networks; ``"*"`` trusts every peer."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.everyone = False
        self.networks: list[Network] = []
        self.names: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if entry == "*":
                self.everyone = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry)  # "unix:", a host name: compared as it is

    def __contains__(self, host: str) -> bool:
        if self.everyone or host in self.names:
            return True
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def client_address(conn: HTTPConnection, trusted: TrustedProxies | None = None) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy,
    the nearest address in ``X-Forwarded-For`` that is not one."""
    peer = conn.client.host if conn.client is not None else ""
    if trusted is None or peer not in trusted:
        return peer
    hops = [
        hop.strip()
        for header in conn.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return hops[0] if hops else peer
