"""A signed-in app for the auth and permission tests: a cookie login over
HTTP, Starlette's `AuthenticationMiddleware`, per-user `Notes`, and a shared
`Board` that editors change and viewers only read."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import httpx2
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect

from ws_sync import (
    Session,
    SessionRegistry,
    remote_action,
    remote_task,
    session_context,
    sync_all,
    sync_endpoint,
)

TIMEOUT = 10.0


class Member(SimpleUser):
    def __init__(self, username: str, role: str) -> None:
        super().__init__(username)
        self.role = role


class Cookies(AuthenticationBackend):
    """Who signed in, by the random token of their ``token`` cookie."""

    def __init__(self) -> None:
        self.tokens: dict[str, Member] = {}

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, Member] | None:
        member = self.tokens.get(conn.cookies.get("token", ""))
        if member is None:
            return None
        return AuthCredentials(["authenticated"]), member


def editor(session: Session, params: dict[str, Any]) -> bool:
    return getattr(session.user, "role", None) == "editor"


async def editor_async(session: Session, params: dict[str, Any]) -> bool:
    await asyncio.sleep(0)
    return editor(session, params)


class Board(BaseModel):
    cards: list[str] = []
    title: str = "Board"
    calls: int = 0

    @sync_all("BOARD")
    def model_post_init(self, __context: Any) -> None:
        pass

    def can_write(self, session: Session, path: str, op: str) -> bool:
        return getattr(session.user, "role", None) == "editor"

    @remote_action("ADD", allow=editor)
    async def add(self, text: str) -> int:
        self.cards.append(text)
        await self.sync()
        return len(self.cards)

    @remote_action("RENAME", allow=editor_async)
    async def rename(self, title: str) -> None:
        self.title = title
        await self.sync()

    @remote_action("PING")
    async def ping(self) -> str:
        self.calls += 1
        return getattr(session_context.get().user, "identity", "")

    @remote_task("WAIT", allow=lambda session, params: session.user.identity == params["owner"])
    async def wait(self, owner: str) -> str:
        await asyncio.sleep(30)
        return owner


class Secret(BaseModel):
    code: str = "s3cret"

    @sync_all("SECRET")
    def model_post_init(self, __context: Any) -> None:
        pass

    def can_read(self, session: Session) -> bool:
        return getattr(session.user, "role", None) == "admin"


class Notes(BaseModel):
    title: str = "My Notes"
    owner: str = ""

    @sync_all("NOTES")
    def model_post_init(self, __context: Any) -> None:
        pass

    @remote_action("RENAME")
    async def rename(self, title: str) -> None:
        self.title = title
        await self.sync()


class AuthApp:
    """The app, its shared objects and what its factory saw."""

    def __init__(self, *, default: bool = False, user_sessions: bool = True) -> None:
        self.backend = Cookies()
        self.board = Board(cards=["first"])
        self.secret = Secret()
        self.users: list[Any] = []
        self.registry = SessionRegistry(ttl=60)

        def factory() -> list[Any]:
            session = session_context.get()
            self.users.append(session.user)
            session.attach(self.board)
            session.attach(self.secret)
            owner = getattr(session.user, "identity", "")
            return [Notes(owner=owner), self.board, self.secret]

        def signed_in(ws: Any) -> Any:
            return ws.user if ws.user.is_authenticated else None

        registry: SessionRegistry | bool = self.registry if user_sessions else False
        route = sync_endpoint(
            factory,
            user_sessions=registry,
            authenticate=None if default else signed_in,
        )
        self.app = Starlette(
            routes=[Route("/login", self.login), route],
            middleware=[Middleware(AuthenticationMiddleware, backend=self.backend)],
        )

    async def login(self, request: Request) -> PlainTextResponse:
        token = secrets.token_urlsafe(16)
        name, role = request.query_params["name"], request.query_params.get("role", "editor")
        self.backend.tokens[token] = Member(name, role)
        response = PlainTextResponse("signed in")
        response.set_cookie("token", token, httponly=True, samesite="lax")
        return response


async def sign_in(url: str, name: str, role: str = "editor") -> str:
    """Sign in over HTTP; the ``Cookie`` header the browser would send back."""
    http = url.replace("ws://", "http://")
    async with httpx2.AsyncClient() as client:
        response = await client.get(f"{http}/login", params={"name": name, "role": role})
        response.raise_for_status()
        return "; ".join(f"{k}={v}" for k, v in response.cookies.items())


class Peer:
    """A protocol client: sends frames, and reads them into a list."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open(
        cls, url: str, cookie: str | None = None, ids: tuple[str, str] | None = None
    ) -> Peer:
        headers = {"Cookie": cookie} if cookie else {}
        ws = await connect(f"{url}/ws", proxy=None, additional_headers=headers)
        peer = cls(ws)
        if ids is not None:
            assert (await peer.recv())["type"] == "_REQUEST_USER_SESSION"
            await peer.send("_USER_SESSION", {"user": ids[0], "session": ids[1]})
        return peer

    async def send(self, event: str, data: Any = None) -> None:
        await self.ws.send(json.dumps({"type": event, "data": data}))

    async def recv(self) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
        self.frames.append(frame)
        return frame

    async def until(self, kind: str) -> dict[str, Any]:
        while True:
            frame = await self.recv()
            if frame["type"] == kind:
                return frame

    async def settle(self) -> list[dict[str, Any]]:
        """Every frame up to the answer of a `_PING` sent now (events are
        handled in order, so all answers to earlier frames came before it)."""
        marker = secrets.token_hex(4)
        await self.send("_PING", marker)
        got = []
        while True:
            frame = await self.recv()
            if frame["type"] == "_PONG" and frame["data"] == marker:
                return got
            got.append(frame)

    async def close(self) -> None:
        await self.ws.close()
