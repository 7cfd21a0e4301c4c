"""The exact frames an Engine.IO v3 / Socket.IO v2 client sees (PROTOCOL.md §1)."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.support.eio3 import TIMEOUT, Eio3Client, join, joined
from tests.support.identity import Identity
from tests.support.live import LiveServer, live_server
from tests.support.wait import eventually
from wsstar.server.admission import Limits
from wsstar.server.engineio.session import DIRECT_TEXT_MIN


async def test_handshake_is_open_then_bare_40(server: LiveServer) -> None:
    client = await Eio3Client.connect(server.port)
    try:
        assert set(client.open) == {"sid", "upgrades", "pingInterval", "pingTimeout"}
        assert client.open["upgrades"] == []
        assert client.open["pingInterval"] == 25000
        assert client.open["pingTimeout"] == 20000
    finally:
        await client.close()


async def test_client_ping_gets_pong_with_same_data(server: LiveServer) -> None:
    client = await Eio3Client.connect(server.port)
    try:
        await client.send_raw("2probe")
        await client.send_raw("2")
        await eventually(lambda: "3" in client.frames and "3probe" in client.frames)
    finally:
        await client.close()


async def test_join_frames_and_ws_peer(server: LiveServer) -> None:
    a = await Eio3Client.connect(server.port)
    b = await Eio3Client.connect(server.port)
    ia, ib = Identity.generate(), Identity.generate()
    try:
        err, nonce = await a.call(
            "ss-join", ia.address(server.port), ia.marshalled_public_key.hex()
        )
        assert err is None
        assert len(nonce) == 72  # two UUIDs, like the reference
        assert await a.call("ss-join", ia.address(server.port), ia.sign_hex(nonce)) == [
            None,
            None,
            [],
        ]
        assert await join(b, ib, server.port) == [None, None, [ia.address(server.port)]]
        assert await a.next_event("ws-peer") == ("ws-peer", [ib.address(server.port)])
        # The ack frame is compact JSON exactly as JSON.stringify writes it.
        assert any(f == f'431[null,null,["{ia.address(server.port)}"]]' for f in b.frames)
    finally:
        await a.close()
        await b.close()


async def test_a_large_join_ack_arrives_whole_and_in_order() -> None:
    async with live_server(limits=Limits(joins_per_ip_per_second=0)) as server:
        await _large_join_ack(server)


async def _large_join_ack(server: LiveServer) -> None:
    # Sixty peers make an ack of several KiB, which is written straight to
    # the socket rather than queued (engine.DIRECT_TEXT_MIN).
    peers = [await joined(server.port) for _ in range(60)]
    newcomer = await Eio3Client.connect(server.port)
    try:
        reply = await join(newcomer, Identity.generate(), server.port)
        assert sorted(reply[2]) == sorted(addr for _, addr in peers)
        assert len(json.dumps(reply)) > DIRECT_TEXT_MIN
        # Small replies after it still come, and in order.
        for i in range(3):
            name = f"no-such-event-{i}"
            assert await newcomer.call(name) == [f"Unknown event: {name}"]
    finally:
        await newcomer.close()
        for client, _ in peers:
            await client.close()


async def test_binary_relay_uses_0x04_prefixed_frames(server: LiveServer) -> None:
    a = await Eio3Client.connect(server.port)
    b = await Eio3Client.connect(server.port)
    ia, ib = Identity.generate(), Identity.generate()
    try:
        await join(a, ia, server.port)
        await join(b, ib, server.port)
        dial = asyncio.ensure_future(
            a.call("ss-dial", ia.address(server.port), ib.address(server.port), "X")
        )
        assert await a.next_event() == ("socket.io-pull-stream.accept.X.dialer", [])
        # Sent before the listener accepted: held by the server, then delivered first.
        await a.emit("socket.io-pull-stream.queue.X.dialer", b"early")
        name, args = await b.next_event("ss-incomming")
        assert args == ["X", ia.address(server.port)]
        await b.accept_dial("X")
        assert await b.next_event() == ("socket.io-pull-stream.queue.X.dialer", [b"early"])
        assert await b.next_event() == ("socket.io-pull-stream.accept.X.listener", [])
        assert await asyncio.wait_for(dial, TIMEOUT) == []
        await a.emit("socket.io-pull-stream.accept.X.listener")
        await a.emit("socket.io-pull-stream.queue.X.dialer", b"hello")
        await a.emit("socket.io-pull-stream.queue.X.dialer", b"")
        await a.emit("socket.io-pull-stream.error.X.dialer", True)
        assert await b.next_event() == ("socket.io-pull-stream.queue.X.dialer", [b"hello"])
        assert await b.next_event() == ("socket.io-pull-stream.queue.X.dialer", [b""])
        assert await b.next_event() == ("socket.io-pull-stream.error.X.dialer", [True])
        assert b"\x04hello" in b.frames and b"\x04" in b.frames
        assert (
            '451-["socket.io-pull-stream.queue.X.dialer",{"_placeholder":true,"num":0}]' in b.frames
        )
    finally:
        await a.close()
        await b.close()


async def test_b64_clients_get_binary_as_text(server: LiveServer) -> None:
    a = await Eio3Client.connect(server.port, "&b64=1")
    b = await Eio3Client.connect(server.port)
    ia, ib = Identity.generate(), Identity.generate()
    try:
        await join(a, ia, server.port)
        await join(b, ib, server.port)
        dial = asyncio.ensure_future(
            b.call("ss-dial", ib.address(server.port), ia.address(server.port), "Y")
        )
        await a.next_event("ss-incomming")
        await a.accept_dial("Y")
        assert await asyncio.wait_for(dial, TIMEOUT) == []
        await b.emit("socket.io-pull-stream.queue.Y.dialer", b"\x00\xff")
        await eventually(lambda: "b4AP8=" in a.frames)
    finally:
        await a.close()
        await b.close()


async def test_polling_handshake_and_post(server: LiveServer) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/socket.io/?EIO=3&transport=polling"
        async with http.get(url) as resp:
            body = await resp.text()
        length, _, rest = body.partition(":")
        open_packet = rest[: int(length)]
        assert open_packet.startswith("0{")
        info = json.loads(open_packet[1:])
        assert info["upgrades"] == ["websocket"]
        assert rest[int(length) :] == "2:40"
        sid = info["sid"]
        ident = Identity.generate()
        event = json.dumps(
            ["ss-join", ident.address(server.port), ident.marshalled_public_key.hex()]
        )
        packet = "420" + event
        async with http.post(f"{url}&sid={sid}", data=f"{len(packet)}:{packet}") as resp:
            assert resp.status == 200
        async with http.get(f"{url}&sid={sid}") as resp:
            body = await resp.text()
        length, _, rest = body.partition(":")
        assert len(rest) == int(length), body
        assert rest.startswith('430[null,"') and len(json.loads(rest[3:])[1]) == 72


async def test_server_drops_a_v3_client_that_stops_pinging() -> None:
    async with live_server(ping_interval=0.2, ping_timeout=0.2) as srv:
        client = await Eio3Client.connect(srv.port, keepalive=False)
        try:
            await asyncio.wait_for(client.closed.wait(), TIMEOUT)
            await eventually(lambda: srv.service.core.socket_count() == 0)
        finally:
            await client.close()
