"""A TCP proxy that injects network faults between one client and the server.

Each `FaultProxy` listens on a free local port and forwards every connection
to the server. The test breaks it on purpose:

- `cut()`: close every connection now (a dropped network, a server restart);
- `set_delay(s)`: hold every chunk `s` seconds in each direction, in order;
- `blackhole(s)`: for `s` seconds bytes in both directions vanish and the
  peers learn nothing; then the connections are cut, as their byte streams
  are broken. A client notices only by its own liveness check;
- `partition(s)`: refuse new connections and cut the current ones for `s`.

`heal()` ends every fault. `Faults` runs a seeded schedule of them across
several proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

CHUNK = 1 << 16


class _Link:
    """One proxied connection: two pumps, client -> server and back."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.broken = False  # bytes were lost: the streams cannot go on

    async def run(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.writers.append(client_w)
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.proxy.target)
        except OSError:
            self.close()
            return
        self.writers.append(server_w)
        self.tasks = [
            asyncio.ensure_future(self._pump(client_r, server_w)),
            asyncio.ensure_future(self._pump(server_r, client_w)),
        ]
        await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        self.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.ensure_future(self._deliver(queue, writer))
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if self.proxy.holed:
                    self.broken = True
                    continue
                queue.put_nowait((time.monotonic() + self.proxy.delay, data))
            queue.put_nowait((0.0, b""))
            await sender
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            sender.cancel()

    async def _deliver(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        while True:
            due, data = await queue.get()
            if not data:
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if self.proxy.holed:
                self.broken = True
                continue
            writer.write(data)
            await writer.drain()

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self.proxy.links.discard(self)


class FaultProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target`, with faults on demand."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.delay = 0.0
        self.holed = False
        self.refusing = False
        self.links: set[_Link] = set()
        self.connections = 0  # accepted so far
        self._server: asyncio.Server | None = None
        self._timers: list[asyncio.TimerHandle] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        self.connections += 1
        link = _Link(self)
        self.links.add(link)
        await link.run(reader, writer)

    def cut(self) -> None:
        for link in list(self.links):
            link.close()

    def set_delay(self, seconds: float) -> None:
        self.delay = seconds

    def blackhole(self, seconds: float) -> None:
        self.holed = True
        self._later(seconds, self._end_blackhole)

    def _end_blackhole(self) -> None:
        self.holed = False
        for link in list(self.links):
            if link.broken:
                link.close()

    def partition(self, seconds: float) -> None:
        self.refusing = True
        self.cut()
        self._later(seconds, lambda: setattr(self, "refusing", False))

    def _later(self, seconds: float, fn: object) -> None:
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(seconds, fn))  # type: ignore[arg-type]

    def heal(self) -> None:
        """Every fault ends; connections whose bytes were lost are cut."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.delay = 0.0
        self.refusing = False
        self._end_blackhole()

    async def close(self) -> None:
        self.heal()
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


class Faults:
    """A seeded schedule of faults over `proxies`, run until `stop()`. Returns
    (and keeps in `log`) what it did, for the failure report."""

    KINDS = ("cut", "cut", "delay", "blackhole", "partition")

    def __init__(self, proxies: list[FaultProxy], seed: int) -> None:
        self.proxies = proxies
        self.rng = random.Random(seed)
        self.log: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for proxy in self.proxies:
            proxy.heal()

    async def _run(self) -> None:
        rng = self.rng
        while True:
            await asyncio.sleep(rng.uniform(0.02, 0.15))
            i = rng.randrange(len(self.proxies))
            proxy = self.proxies[i]
            kind = rng.choice(self.KINDS)
            if kind == "cut":
                proxy.cut()
                self.log.append(f"cut {i}")
            elif kind == "delay":
                seconds = rng.choice([0.0, 0.0, 0.02, 0.1, 0.3])
                proxy.set_delay(seconds)
                self.log.append(f"delay {i} {seconds}")
            elif kind == "blackhole":
                seconds = rng.uniform(0.2, 1.2)
                proxy.blackhole(seconds)
                self.log.append(f"blackhole {i} {seconds:.2f}")
            else:
                seconds = rng.uniform(0.2, 1.0)
                proxy.partition(seconds)
                self.log.append(f"partition {i} {seconds:.2f}")
