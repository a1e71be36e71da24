"""A connection of its own to Redis, for the hot path of a shared object.

A shared object's commits and its stream reads go over two such links rather
than through redis-py's connection pool, for two reasons:

- The pool checks a connection for stray data each time it lends one, which
  costs a turn of the event loop before the command is even sent: on a commit
  that every other worker's clients are waiting for, that turn is latency.
- The pool's client may send a command again after its connection failed. A
  commit is a compare-and-set: sent again after it ran, it would come back as
  a conflict. A link sends each command once; a failure on the wire leaves it
  in doubt, which the replica settles from the stream.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from . import eager
from .eager import Resume

_WRITTEN = object()


class Link:
    """One Redis connection with one owner (one task at a time): one command
    at a time, never sent twice."""

    def __init__(self, client: Any) -> None:
        pool = client.connection_pool
        options = dict(pool.connection_kwargs)
        self.timeout = float(options.get("socket_timeout") or 5.0)
        """Seconds a command may take (beyond its own wait, see `call`)."""
        options["socket_timeout"] = None  # one timer per command here, not one per step
        self._connect = lambda: pool.connection_class(**options)
        self._conn: Any = None
        self._sent: tuple[Any, ...] | None = None  # written by `send`, its answer not yet read
        self._rest: Resume | None = None  # what is left of that write, if it had to wait
        self._shas: dict[str, str] = {}
        self._busy = False  # a command is between its write and its answer

    def send(self, *args: Any) -> bool:
        """Write a command now, in the caller's own step (a handler's
        ``sync()``), if the link is connected and idle; `answer` reads its
        answer. False if nothing was written: `call` connects first."""
        conn = self._conn
        if conn is None or self._sent is not None or not conn.is_connected:
            return False
        self._busy = True
        self._rest = eager.start(conn.send_packed_command(pack(args), check_health=False))
        self._sent = args
        return True

    async def answer(self) -> Any:
        """The answer to the command `send` wrote."""
        args, rest = self._sent, self._rest
        assert args is not None and self._conn is not None
        try:
            return await self._exchange(self._conn, args, rest or _WRITTEN, 0.0)
        finally:
            self._sent = self._rest = None

    async def call(self, *args: Any, wait: float = 0.0) -> Any:
        """Send one command and read its answer, within `timeout` plus `wait`
        (a blocking read's own)."""
        assert self._sent is None, "one command at a time"
        conn = self._conn
        if conn is None:
            conn = self._conn = self._connect()
        return await self._exchange(conn, args, None, wait)

    async def _exchange(self, conn: Any, args: tuple[Any, ...], written: Any, wait: float) -> Any:
        """`args` written (None: not yet; a `Resume`: partly), then its answer.
        A failure other than an error answer drops the connection (the next
        call opens another): an answer still on its way must not be read as
        the next one's."""
        from redis.exceptions import ResponseError
        from redis.exceptions import TimeoutError as NoAnswer

        self._busy = True
        try:
            async with asyncio.timeout(self.timeout + wait):
                if written is None:
                    await conn.send_packed_command(pack(args), check_health=False)
                elif written is not _WRITTEN:
                    await written
                return await conn.read_response()
        except ResponseError:
            raise
        except TimeoutError:  # asyncio's: a connection error, as redis-py's own
            self._drop(conn)
            raise NoAnswer(f"Redis did not answer {args[0]} in time") from None
        except BaseException:
            self._drop(conn)
            raise
        finally:
            self._busy = False

    def forget_idle(self) -> None:
        """Redis was found unreachable elsewhere: an idle connection to it is
        closed too, so the next command opens a fresh one instead of being
        written into a socket the server has closed."""
        if self._conn is not None and not self._busy:
            self._drop(self._conn)

    def _drop(self, conn: Any) -> None:
        if self._conn is conn:
            self._conn = None
        task = asyncio.ensure_future(conn.disconnect(nowait=True))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def script(self, body: str) -> str:
        """The digest Redis knows a script by."""
        sha = self._shas.get(body)
        if sha is None:
            sha = self._shas[body] = hashlib.sha1(body.encode()).hexdigest()
        return sha

    async def run(self, body: str, keys: list[str], args: list[Any]) -> Any:
        """A Lua script by its digest, loaded first if Redis does not know it
        (a restarted Redis)."""
        from redis.exceptions import NoScriptError

        sha = self.script(body)
        try:
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.call("SCRIPT", "LOAD", body)
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect(nowait=True)


def pack_py(args: tuple[Any, ...]) -> bytes:
    """A command in RESP: strings as UTF-8, numbers as their digits."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, int | float) and not isinstance(arg, bool):
            data = repr(arg).encode()
        else:
            raise TypeError(f"cannot send {type(arg).__name__} to Redis")
        out += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(out)


try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # the `redis` extra brings hiredis; plain redis-py works too
    pack = pack_py
else:

    def pack(args: tuple[Any, ...]) -> bytes:
        """A command in RESP, packed by hiredis (in C)."""
        return _hiredis_pack(args)  # type: ignore[no-any-return]


def entries(reply: Any) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """An XREAD answer as ``[(stream, [(entry_id, fields), ...]), ...]``."""
    if not reply:
        return []
    found = []
    for name, items in reply.items() if isinstance(reply, dict) else reply:  # RESP3, RESP2
        parsed = []
        for entry_id, flat in items:
            it = iter(flat or ())
            parsed.append((entry_id, dict(zip(it, it, strict=True))))
        found.append((name, parsed))
    return found
