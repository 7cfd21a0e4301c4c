from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.live import LiveServer, live_server


@pytest.fixture
async def server() -> AsyncIterator[LiveServer]:
    """A server with the CLI's defaults (challenge on, strict multiaddr on)."""
    async with live_server() as running:
        yield running
