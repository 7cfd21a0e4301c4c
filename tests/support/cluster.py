"""Server processes joined through one Redis, and what they say of it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from tests.support.redis import RedisServer
from tests.support.subject import Subject
from tests.support.wait import TIMEOUT

#: A short liveness TTL, so that a dead node is noticed within a test.
TTL = "2"


@contextlib.asynccontextmanager
async def nodes(redis: RedisServer, count: int, *flags: str) -> AsyncIterator[list[Subject]]:
    async with contextlib.AsyncExitStack() as stack:
        started = [
            await stack.enter_async_context(
                Subject.running("--redis-url", redis.url, "--node-ttl", TTL, *flags)
            )
            for _ in range(count)
        ]
        for node in started:
            await until_health(node, lambda h: h["cluster"]["nodes"] == count)
        yield started


async def health(node: Subject) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(node.url + "/health", timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as resp,
    ):
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


async def until_health(
    node: Subject, condition: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT
) -> None:
    """Poll ``/health`` until ``condition`` holds of it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        body = await health(node)
        if condition(body):
            return
        assert loop.time() < deadline, body
        await asyncio.sleep(0.05)
