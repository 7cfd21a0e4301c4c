"""Run a wsstar server in the test's own event loop, on 127.0.0.1 and a free port."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from wsstar.server.config import ServerConfig
from wsstar.server.http import make_runner, make_site, shutdown
from wsstar.server.service import RendezvousService
from wsstar.star.rendezvous import Settings


@dataclasses.dataclass
class LiveServer:
    service: RendezvousService
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_star(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/ws/p2p-websocket-star"


@contextlib.asynccontextmanager
async def live_server(rules: Settings | None = None, **options: Any) -> AsyncIterator[LiveServer]:
    config = ServerConfig(host="127.0.0.1", port=0, rules=rules or Settings(), **options)
    service = RendezvousService(config)
    runner = make_runner(service)
    await runner.setup()
    site = make_site(runner, service, "127.0.0.1", 0)
    await site.start()
    port = site.port
    try:
        yield LiveServer(service, port)
    finally:
        await shutdown(runner, service)
