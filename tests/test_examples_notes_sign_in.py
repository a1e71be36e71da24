"""The Notes example's optional sign-in, against a real server: the page and
the socket want the cookie session, each name has its own notes, and
`/logout` closes them."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from auth_app import Peer
from session_helpers import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from examples.notes.app import create_app


async def sign_in(http: str, name: str) -> tuple[httpx2.AsyncClient, str]:
    client = httpx2.AsyncClient(base_url=http, follow_redirects=False)
    response = await client.post("/login", content=f"name={name}".encode())
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return client, cookie


async def test_signed_out_the_page_asks_for_a_name_and_the_socket_is_refused() -> None:
    app = create_app(sign_in=True)
    async with serve(app) as url:
        http = url.replace("ws://", "http://")
        async with httpx2.AsyncClient(base_url=http) as client:
            page = await client.get("/")
            assert page.status_code == 303 and page.headers["location"] == "/login"
            form = await client.get("/login")
            assert '<label for="name">' in form.text
            empty = await client.post("/login", content=b"name=")
            assert empty.status_code == 400 and 'role="alert"' in empty.text
        with pytest.raises(InvalidStatus) as refused:
            await Peer.open(url)
        assert refused.value.response.status_code == 403
        assert len(app.state.sessions) == 0


async def test_each_name_has_its_own_notes_and_logout_closes_them() -> None:
    app = create_app(sign_in=True)
    async with serve(app) as url:
        http = url.replace("ws://", "http://")
        ann, ann_cookie = await sign_in(http, "ann")
        bob, bob_cookie = await sign_in(http, "bob")
        page = await ann.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()

        a = await Peer.open(url, ann_cookie, ("u1", "s1"))
        await a.until("_SET:NOTES")
        await a.send("_ACTION:NOTES", {"type": "ADD_NOTE", "note": "ann's", "$id": 1})
        await a.until("_ACTION_RESULT:NOTES")

        b = await Peer.open(url, bob_cookie, ("u1", "s1"))  # ann's ids, bob's cookie
        assert (await b.until("_SET:NOTES"))["data"]["notes"] == []
        again = await Peer.open(url, ann_cookie, ("u1", "s1"))
        assert (await again.until("_SET:NOTES"))["data"]["notes"] == ["ann's"]

        out = await ann.get("/logout")
        assert out.status_code == 303 and out.headers["location"] == "/login"
        for peer in (a, again):
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(peer.until("_NEVER"), 5)
        await b.send("_PING", "still here")
        assert (await b.until("_PONG"))["data"] == "still here"
        await b.ws.close()
        await ann.aclose()
        await bob.aclose()
