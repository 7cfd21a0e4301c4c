"""Bounded waiting for conditions that become true asynchronously."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

TIMEOUT = 10.0


async def eventually(
    condition: Callable[[], bool], timeout: float = TIMEOUT, what: str = ""
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.01)
