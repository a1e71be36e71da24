"""The Origin check that protects against cross-site WebSocket hijacking.

Browsers send cookies with a WebSocket handshake to any site, and the
same-origin policy does not apply to WebSockets: a page on evil.example could
open a socket to us with the user's cookies. Browsers do always send the
`Origin` header, so checking it closes that door. Clients that are not browsers
send no Origin and cannot carry a victim's cookies; they are let through.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection


def origin_allowed(conn: HTTPConnection, allowed: Iterable[str] | None = None) -> bool:
    """Whether the handshake's Origin may connect.

    `allowed` is a list of origins (``"https://app.example.com"``); ``"*"``
    allows any. None (the default) allows the same origin only: the Origin's
    host and port must equal the Host header.
    """
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    if allowed is None:
        host = conn.headers.get("host", "").strip().lower()
        parts = urlsplit(origin)
        return bool(host) and parts.scheme in ("http", "https") and parts.netloc == host
    normalized = {a.strip().rstrip("/").lower() for a in allowed}
    return "*" in normalized or origin in normalized
