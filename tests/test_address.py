"""Client addresses behind trusted proxies, and what one address may hold:
its sessions and its share of the inbound frame budget."""

import asyncio
from typing import Any

import pytest
from starlette.requests import HTTPConnection

from ws_sync import Session
from ws_sync.address import TrustedProxies, client_address
from ws_sync.limits import AddressBuckets
from ws_sync.registry import RegistryFull, SessionRegistry


def conn(peer: str, *forwarded: str) -> HTTPConnection:
    headers = [(b"x-forwarded-for", f.encode()) for f in forwarded]
    return HTTPConnection({"type": "websocket", "client": (peer, 1234), "headers": headers})


def test_the_header_is_believed_only_from_a_trusted_proxy() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "127.0.0.1"])
    assert client_address(conn("203.0.113.9", "1.2.3.4")) == "203.0.113.9"
    assert client_address(conn("203.0.113.9", "1.2.3.4"), proxies) == "203.0.113.9"
    assert client_address(conn("10.1.2.3", "1.2.3.4"), proxies) == "1.2.3.4"
    # a client that sends its own header cannot pick its address: the
    # proxy appends the real one, the nearest untrusted hop
    assert client_address(conn("10.1.2.3", "6.6.6.6, 1.2.3.4"), proxies) == "1.2.3.4"
    assert client_address(conn("127.0.0.1", "5.5.5.5", "1.2.3.4, 10.9.9.9"), proxies) == "1.2.3.4"
    assert client_address(conn("10.1.2.3"), proxies) == "10.1.2.3"
    everyone = TrustedProxies(["*"])
    assert client_address(conn("9.9.9.9", "1.2.3.4, 5.6.7.8"), everyone) == "1.2.3.4"


def test_address_buckets_are_shared_and_freed() -> None:
    buckets = AddressBuckets(rate=1.0, burst=1)
    a, b = buckets.acquire("x"), buckets.acquire("x")
    assert a is b and buckets.acquire("y") is not a
    buckets.release("x")
    buckets.release("x")
    buckets.release("y")
    assert len(buckets) == 0


async def _open(registry: SessionRegistry, sid: str, address: str) -> Session:
    async def create() -> Session:
        return Session()

    return await registry.open(("u", sid), create, address)


async def _idle(registry: SessionRegistry, sid: str, session: Session) -> None:
    registry.release(("u", sid), session)
    await asyncio.sleep(0.001)  # distinct idle stamps


async def test_an_address_over_its_cap_evicts_its_own_idle_session() -> None:
    registry = SessionRegistry(max_sessions=100, max_sessions_per_address=2)
    victim = await _open(registry, "v", "good")
    await _idle(registry, "v", victim)
    first = await _open(registry, "a1", "evil")
    await _idle(registry, "a1", first)
    second = await _open(registry, "a2", "evil")
    await _idle(registry, "a2", second)
    await _open(registry, "a3", "evil")  # over its cap: its own oldest idle goes
    await asyncio.sleep(0)
    assert registry.get(("u", "a1")) is None
    assert registry.get(("u", "a2")) is second
    assert registry.get(("u", "v")) is victim  # never someone else's
    await registry.close()


async def test_an_address_with_every_session_connected_is_refused() -> None:
    registry = SessionRegistry(max_sessions=100, max_sessions_per_address=2)
    await _open(registry, "a1", "evil")
    await _open(registry, "a2", "evil")
    with pytest.raises(RegistryFull, match="2 sessions of this address are in use"):
        await _open(registry, "a3", "evil")
    await _open(registry, "b1", "good")  # other addresses are not affected
    await registry.close()


async def test_one_address_cannot_push_everyone_out() -> None:
    registry = SessionRegistry(max_sessions=6, max_sessions_per_address=3)
    others: list[Any] = []
    for i in range(3):
        session = await _open(registry, f"o{i}", f"user{i}")
        await _idle(registry, f"o{i}", session)
        others.append(session)
    for i in range(50):  # a flood of sessions from one address
        session = await _open(registry, f"e{i}", "evil")
        await _idle(registry, f"e{i}", session)
    await asyncio.sleep(0)
    assert all(registry.get(("u", f"o{i}")) is others[i] for i in range(3))
    assert len(registry) == 6
    await registry.close()


async def test_a_session_the_app_closed_is_replaced_on_resume() -> None:
    registry = SessionRegistry()
    first = await _open(registry, "s", "a")
    registry.release(("u", "s"), first)
    await first.close()
    second = await _open(registry, "s", "a")
    assert second is not first and not second.closed
    await registry.close()
