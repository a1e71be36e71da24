"""Principals against a real server: uvicorn, cookies from an HTTP login,
Starlette's `AuthenticationMiddleware`, `websockets` clients."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from auth_app import AuthApp, Peer, sign_in
from session_helpers import serve
from starlette.applications import Starlette
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ws_sync import (
    Session,
    SessionRegistry,
    SessionState,
    remote_action,
    remote_task,
    session_context,
    sync_all,
    sync_endpoint,
)
from ws_sync.auth import current_user, identity, principal_of, revoke


def audits(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    return [
        r.audit  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "ws_sync.audit" and r.audit["event"] == event  # type: ignore[attr-defined]
    ]


async def test_a_signed_out_client_is_refused_before_any_state_exists(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = AuthApp()
    async with serve(app.app) as url:
        for cookie in (None, "token=forged"):
            with pytest.raises(InvalidStatus) as refused:
                await Peer.open(url, cookie)
            assert refused.value.response.status_code == 403
        assert len(app.registry) == 0 and app.users == []
        assert len(audits(caplog, "handshake refused")) == 2
        assert audits(caplog, "handshake refused")[0] == {
            "event": "handshake refused",
            "principal": None,
            "path": "/ws",
            "address": "127.0.0.1",
        }


async def test_a_signed_in_client_gets_a_session_of_its_principal() -> None:
    app = AuthApp()
    async with serve(app.app) as url:
        peer = await Peer.open(url, await sign_in(url, "alice"), ("u1", "s1"))
        notes = await peer.until("_SET:NOTES")
        assert notes["data"]["owner"] == "alice"  # the factory saw session.user
        await peer.send("_ACTION:BOARD", {"type": "PING", "$id": 1})
        result = await peer.until("_ACTION_RESULT:BOARD")
        assert result["data"] == {"id": 1, "ok": True, "result": "alice"}  # and the action
        assert [identity(u) for u in app.users] == ["alice"]
        assert app.registry.get(("u1", "s1"), "alice") is not None
        assert app.registry.get(("u1", "s1")) is None  # not an unbound session
        await peer.close()


async def test_stolen_ids_do_not_resume_another_principals_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = AuthApp()
    async with serve(app.app) as url:
        alice = await Peer.open(url, await sign_in(url, "alice"), ("u1", "s1"))
        await alice.until("_SET:NOTES")
        await alice.send("_ACTION:NOTES", {"type": "RENAME", "title": "alice's secrets"})
        await alice.settle()
        session = app.registry.get(("u1", "s1"), "alice")
        assert session is not None

        mallory = await Peer.open(url, await sign_in(url, "mallory"), ("u1", "s1"))
        stolen = await mallory.until("_SET:NOTES")
        assert stolen["data"] == {"title": "My Notes", "owner": "mallory"}  # a fresh session
        await mallory.send("_ACTION:NOTES", {"type": "RENAME", "title": "pwned"})
        await mallory.settle()

        assert session.syncs["NOTES"].obj.title == "alice's secrets"  # untouched
        assert session.is_connected and len(session.connections) == 1  # not taken over
        assert app.registry.get(("u1", "s1"), "mallory") is not session
        assert len(app.registry) == 2
        assert audits(caplog, "session ids of another principal") == [
            {
                "event": "session ids of another principal",
                "principal": "mallory",
                "holder": "alice",
                "address": "127.0.0.1",
            }
        ]
        # alice comes back with her ids: her own session resumes
        await alice.close()
        again = await Peer.open(url, await sign_in(url, "alice"), ("u1", "s1"))
        assert (await again.until("_SET:NOTES"))["data"]["title"] == "alice's secrets"
        assert app.registry.get(("u1", "s1"), "alice") is session
        await asyncio.gather(again.close(), mallory.close())


async def test_without_authenticate_the_middleware_user_binds_and_anonymous_stays_unbound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = AuthApp(default=True)
    async with serve(app.app) as url:
        alice = await Peer.open(url, await sign_in(url, "alice"), ("u1", "s1"))
        await alice.until("_SET:NOTES")
        await alice.send("_ACTION:NOTES", {"type": "RENAME", "title": "mine"})
        await alice.settle()
        anonymous = await Peer.open(url, None, ("u1", "s1"))  # stolen ids, no sign-in
        assert (await anonymous.until("_SET:NOTES"))["data"] == {"title": "My Notes", "owner": ""}
        assert app.registry.get(("u1", "s1"), "alice").syncs["NOTES"].obj.title == "mine"
        assert app.registry.get(("u1", "s1")) is not None  # unbound, as without sign-in
        assert [identity(u) for u in app.users] == ["alice", None]
        assert audits(caplog, "session ids of another principal")[0]["principal"] is None
        await asyncio.gather(alice.close(), anonymous.close())


async def test_revoke_closes_every_session_of_a_principal() -> None:
    app = AuthApp()
    async with serve(app.app) as url:
        alice = await Peer.open(url, await sign_in(url, "alice"), ("u1", "s1"))
        other_tab = await Peer.open(url, await sign_in(url, "alice"), ("u1", "s2"))
        bob = await Peer.open(url, await sign_in(url, "bob"), ("u2", "s1"))
        for peer in (alice, other_tab, bob):
            await peer.until("_SET:NOTES")
        assert await revoke("alice", "You were signed out") == 2
        for peer in (alice, other_tab):
            assert (await peer.until("_DISCONNECT"))["data"] == "You were signed out"
            with pytest.raises(ConnectionClosed):
                await peer.recv()
            assert peer.ws.close_code == 1008
        assert len(app.registry) == 1 and app.registry.get(("u2", "s1"), "bob") is not None
        assert (await bob.settle()) == []  # bob is still served
        await bob.close()


async def test_an_upstream_client_works_with_and_without_authenticate() -> None:
    """Upstream's React client speaks protocol 1 and answers
    `_REQUEST_USER_SESSION` only when configured to; both ways still work."""
    for user_sessions in (False, True):
        for signed in (False, True):
            app = AuthApp(default=not signed, user_sessions=user_sessions)
            async with serve(app.app) as url:
                cookie = await sign_in(url, "alice") if signed else None
                ids = ("u", "s") if user_sessions else None
                peer = await Peer.open(url, cookie, ids)
                notes = await peer.until("_SET:NOTES")
                assert notes["data"]["owner"] == ("alice" if signed else "")
                await peer.send("_ACTION:NOTES", {"type": "RENAME", "title": "x"})
                assert (await peer.until("_PATCH:NOTES"))["data"][0]["value"] == "x"
                await peer.close()


# --------------------------------------------------------------------------- #
# units


class Named:
    def __init__(self, identity: Any) -> None:
        self.identity = identity


def test_identity_of_strings_objects_and_nothing() -> None:
    assert identity("alice") == "alice"
    assert identity(Named("bob")) == "bob"
    assert identity(Named(7)) == "7"
    assert identity(Named("")) is None  # Starlette's UnauthenticatedUser
    assert identity("") is None and identity(None) is None and identity(object()) is None


async def test_authenticate_may_be_sync_or_async() -> None:
    ws = WebSocket({"type": "websocket", "headers": [], "path": "/ws"}, None, None)  # type: ignore[arg-type]

    async def later(_: WebSocket) -> str:
        return "async"

    assert await principal_of(ws, lambda _: "sync") == "sync"
    assert await principal_of(ws, later) == "async"
    assert await principal_of(ws, None) is None  # no middleware: unbound


async def test_current_user_is_the_sessions_principal() -> None:
    with Session(user="carol"):
        assert current_user() == "carol"


async def test_a_registry_keeps_owners_apart() -> None:
    registry = SessionRegistry()
    made: list[Session] = []

    async def create() -> Session:
        made.append(Session())
        return made[-1]

    a = await registry.open(("u", "s"), create, owner="a")
    b = await registry.open(("u", "s"), create, owner="b")
    unbound = await registry.open(("u", "s"), create)
    assert len({id(a), id(b), id(unbound)}) == 3 and len(registry) == 3
    assert await registry.open(("u", "s"), create, owner="a") is a
    registry.discard({a})
    assert registry.get(("u", "s"), "a") is None and registry.get(("u", "s"), "b") is b
    await registry.close()
    await asyncio.gather(*(s.close() for s in made))


async def test_the_principal_is_there_in_factory_actions_tasks_and_hooks() -> None:
    seen: dict[str, Any] = {}

    class Hooks(SessionState):
        async def on_connect(self) -> None:
            seen["hook"] = current_user()

    class Probe:
        @sync_all("PROBE")
        def __init__(self) -> None:
            self.n = 0

        @remote_action("WHO")
        async def who(self) -> Any:
            return current_user()

        @remote_task("WHO_LATER")
        async def who_later(self) -> Any:
            await asyncio.sleep(0)
            return current_user()

    def factory() -> Probe:
        session = session_context.get()
        seen["factory"] = session.user
        session.state = Hooks()
        return Probe()

    def by_header(ws: WebSocket) -> str | None:
        return ws.headers.get("x-user")  # an API token, say

    route = sync_endpoint(factory, user_sessions=False, authenticate=by_header)
    async with serve(Starlette(routes=[route])) as url:
        ws = await connect(f"{url}/ws", proxy=None, additional_headers={"X-User": "dora"})
        peer = Peer(ws)
        await peer.until("_SET:PROBE")
        await peer.send("_ACTION:PROBE", {"type": "WHO", "$id": 1})
        assert (await peer.until("_ACTION_RESULT:PROBE"))["data"]["result"] == "dora"
        await peer.send("_TASK_START:PROBE", {"type": "WHO_LATER"})
        assert (await peer.until("_TASK_DONE:PROBE"))["data"]["result"] == "dora"
        assert seen == {"factory": "dora", "hook": "dora"}
        await peer.close()


async def test_foreign_ids_are_audited_while_any_other_principal_holds_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = SessionRegistry()

    async def create() -> Session:
        return Session()

    alice = await registry.open(("u", "s"), create, "10.0.0.1", owner="alice")
    mallory = await registry.open(("u", "s"), create, "10.0.0.2", owner="mallory")
    registry.discard({mallory})
    await registry.open(("u", "s"), create, "10.0.0.3", owner="eve")
    holders = [
        (a["principal"], a["holder"]) for a in audits(caplog, "session ids of another principal")
    ]
    assert holders == [("mallory", "alice"), ("eve", "alice")]
    assert registry.get(("u", "s"), "alice") is alice
    await registry.close()
    await mallory.close()


async def test_an_authenticate_that_fails_refuses_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    made: list[Any] = []

    async def broken(ws: WebSocket) -> str:
        raise RuntimeError("token service down")

    route = sync_endpoint(made.append, user_sessions=False, authenticate=broken)
    async with serve(Starlette(routes=[route])) as url:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{url}/ws", proxy=None)
        assert refused.value.response.status_code == 403
    assert made == []
    assert any(r.exc_info and "token service down" in str(r.exc_info[1]) for r in caplog.records)
    assert len(audits(caplog, "handshake refused")) == 1
