"""The Host check that protects against DNS rebinding.

A page on evil.example can make its own name resolve to our address for a
moment (DNS rebinding). The browser then takes us for evil.example: the page
reaches us with ``Host: evil.example`` and a matching ``Origin``, so the
same-origin check passes, and it may read what we answer. Only the Host header
gives the attacker's name away, so a server reachable under known names should
list them: ``sync_endpoint(..., allowed_hosts=["app.example.com"])`` refuses a
WebSocket handshake for any other Host (403).

Patterns work as in Starlette's `TrustedHostMiddleware`: a host name or IP
without the port (``"localhost"``, ``"127.0.0.1"``, ``"[::1]"``),
``"*.example.com"`` for every subdomain (not ``example.com`` itself), or ``"*"``
for any host. The check of `sync_endpoint` covers its WebSocket only; for the
app's HTTP routes add the middleware with the same list::

    app.add_middleware(TrustedHostMiddleware, allowed_hosts=HOSTS)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from starlette.requests import HTTPConnection

_HOST = re.compile(r"(?P<host>\[[0-9a-f:.]+\]|[a-z0-9._~%!$&'()*+,;=-]+)(?::[0-9]*)?", re.I)


def host_patterns(allowed: Iterable[str]) -> list[str]:
    """`allowed`, lowercased and checked: a mistyped pattern would refuse every
    client (or none), so it fails at startup with `ValueError`."""
    patterns = [p.strip().lower() for p in allowed]
    for p in patterns:
        if p == "*":
            continue
        name = p[2:] if p.startswith("*.") else p
        match = _HOST.fullmatch(name)
        if "*" in name or match is None or match.group() != match["host"]:
            raise ValueError(f"allowed host {p!r}: a host without port, '*.example.com' or '*'")
    return patterns


def host_allowed(conn: HTTPConnection, allowed: Sequence[str] | None = None) -> bool:
    """Whether the request's Host header names one of `allowed` (patterns of
    `host_patterns`). None allows any host, as before there was a check."""
    if allowed is None or "*" in allowed:
        return True
    match = _HOST.fullmatch(conn.headers.get("host", "").strip())
    if match is None:
        return False
    host = match["host"].lower()
    return any(host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in allowed)
