"""A python-socketio (Socket.IO v5 / Engine.IO v4) rendezvous client for tests."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from tests.support.identity import Identity

TIMEOUT = 10.0


class V4Peer:
    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.peers: asyncio.Queue[str] = asyncio.Queue()
        self.events: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue()
        self.ident = Identity.generate()

        @self.sio.on("ws-peer")  # type: ignore[untyped-decorator]
        async def _peer(addr: str) -> None:
            await self.peers.put(addr)

        @self.sio.on("*")  # type: ignore[untyped-decorator]
        async def _any(event: str, *args: Any) -> None:
            await self.events.put((event, args))

    async def connect(self, url: str, transports: tuple[str, ...] = ("websocket",)) -> None:
        await self.sio.connect(url, transports=list(transports), wait_timeout=TIMEOUT)

    async def join(self, port: int) -> list[Any]:
        addr = self.ident.address(port)
        err, nonce = await self.sio.call(
            "ss-join", (addr, self.ident.marshalled_public_key.hex()), timeout=TIMEOUT
        )
        assert err is None
        return list(
            await self.sio.call("ss-join", (addr, self.ident.sign_hex(nonce)), timeout=TIMEOUT)
        )
