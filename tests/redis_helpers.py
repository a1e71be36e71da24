"""A private redis-server for the tests: a free loopback port, no persistence."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time

from e2e_helpers import free_port, port_open

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """`redis-server` on 127.0.0.1; `stop()` and `start()` again restart it
    on the same port, empty (nothing is saved)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="ws-sync-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self._proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


async def lead_and_report(url: str, prefix: str, lease_ms: str) -> None:
    """A worker for fencing tests, run as a child process: lead the job
    "tick" and print, as JSON lines, its fencing token when it starts, then
    ``still_leader()`` each time it changes (a stopped process shows what it
    sees when it runs again)."""
    import asyncio
    import json

    from ws_sync.backplane import leader, still_leader
    from ws_sync.redis_backplane import RedisBackplane

    async def job() -> None:
        print(json.dumps({"leader": leader()}), flush=True)
        held = True
        while True:
            if still_leader() != held:
                held = not held
                print(json.dumps({"held": held}), flush=True)
            await asyncio.sleep(0.01)

    bp = RedisBackplane(url, prefix=prefix, lease_ms=int(lease_ms))
    try:
        await bp.lead("tick", job)
    finally:
        await bp.close()
