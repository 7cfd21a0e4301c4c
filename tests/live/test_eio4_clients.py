"""Modern Socket.IO v4 clients (Engine.IO v4) through python-socketio's own client."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.eio3 import TIMEOUT, Eio3Client
from tests.support.identity import Identity
from tests.support.live import LiveServer
from tests.support.v4 import V4Peer
from tests.support.wait import eventually


async def test_v4_client_joins_with_the_challenge(server: LiveServer) -> None:
    peer = V4Peer()
    await peer.connect(server.url)
    try:
        assert await peer.join(server.port) == [None, None, []]
    finally:
        await peer.sio.disconnect()


async def test_v4_polling_client_works_too(server: LiveServer) -> None:
    peer = V4Peer()
    await peer.sio.connect(server.url, transports=["polling"], wait_timeout=TIMEOUT)
    try:
        assert await peer.join(server.port) == [None, None, []]
    finally:
        await peer.sio.disconnect()


async def test_v2_and_v4_clients_discover_and_relay_to_each_other(server: LiveServer) -> None:
    v4 = V4Peer()
    await v4.connect(server.url)
    v2 = await Eio3Client.connect(server.port)
    i2 = Identity.generate()
    try:
        assert await v4.join(server.port) == [None, None, []]
        addr2 = i2.address(server.port)
        err, nonce = await v2.call("ss-join", addr2, i2.marshalled_public_key.hex())
        assert await v2.call("ss-join", addr2, i2.sign_hex(nonce)) == [
            None,
            None,
            [v4.ident.address(server.port)],
        ]
        assert await asyncio.wait_for(v4.peers.get(), TIMEOUT) == addr2

        # v4 dials v2; v2 accepts.
        async def incoming(dial_id: str, from_addr: str) -> list[Any]:
            return []

        dial = asyncio.ensure_future(
            v4.sio.call("ss-dial", (v4.ident.address(server.port), addr2, "D"), timeout=TIMEOUT)
        )
        await v2.next_event("ss-incomming")
        await v2.accept_dial("D")
        assert await asyncio.wait_for(dial, TIMEOUT) is None  # empty ack: no arguments
        await v4.sio.emit("socket.io-pull-stream.accept.D.listener")
        await v4.sio.emit("socket.io-pull-stream.queue.D.dialer", b"from-v4")
        assert await v2.next_event("socket.io-pull-stream.queue.D.dialer") == (
            "socket.io-pull-stream.queue.D.dialer",
            [b"from-v4"],
        )
        await v2.emit("socket.io-pull-stream.queue.D.listener", b"from-v2")
        while True:
            event, args = await asyncio.wait_for(v4.events.get(), TIMEOUT)
            if event == "socket.io-pull-stream.queue.D.listener":
                assert args == (b"from-v2",)
                break
    finally:
        await v4.sio.disconnect()
        await v2.close()


async def test_refused_namespace_gets_a_string_error_on_v2(server: LiveServer) -> None:
    client = await Eio3Client.connect(server.port)
    try:
        await client.send_raw("40/admin,")
        await eventually(
            lambda: any(isinstance(f, str) and f.startswith("44/admin,") for f in client.frames)
        )
        frame = next(f for f in client.frames if isinstance(f, str) and f.startswith("44/admin,"))
        assert frame.startswith('44/admin,"')
    finally:
        await client.close()
