"""A real ``redis-server`` on a free loopback port, for the cluster tests.

No fake: the cluster's ordering and liveness rest on what Redis itself does
(scripts, pub/sub order, key expiry).  scripts/test installs the server; a
missing one fails the test rather than skipping it, so CI cannot pass
without running them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from tests.support.subject import free_port
from tests.support.wait import TIMEOUT

#: The binary to run; WSSTAR_REDIS_SERVER names another (a build of one's own).
BINARY = os.environ.get("WSSTAR_REDIS_SERVER", "redis-server")


@dataclasses.dataclass
class RedisServer:
    port: int
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> aioredis.Redis:
        return aioredis.from_url(self.url, decode_responses=True)

    async def start(self) -> None:
        """Start (or start again, on the same port) and wait for PING."""
        if shutil.which(BINARY) is None:
            raise AssertionError(
                f"{BINARY} not found: scripts/test installs Debian's redis-server as root; "
                "otherwise install it (sudo apt-get install redis-server) or set "
                "WSSTAR_REDIS_SERVER to a redis-server binary"
            )
        self.proc = await asyncio.create_subprocess_exec(
            BINARY,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = self.client()
        try:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    with contextlib.suppress(OSError, aioredis.ConnectionError):
                        if await client.ping():
                            return
                    assert self.proc.returncode is None, "redis-server exited"
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        """Stop it (an outage, as far as the nodes can tell)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await asyncio.wait_for(self.proc.wait(), TIMEOUT)
        self.proc = None

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls) -> AsyncIterator[RedisServer]:
        server = cls(free_port())
        await server.start()
        try:
            yield server
        finally:
            await server.stop()
