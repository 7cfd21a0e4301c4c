"""Long-polling POSTs that fail are answered at once and end their session:
none is left waiting for a poll that never comes.  Bodies are read whole."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.support.live import LiveServer, live_server
from tests.support.wait import eventually

LIMIT = 64 * 1024


async def open_session(http: aiohttp.ClientSession, url: str, eio: int) -> str:
    async with http.get(f"{url}/socket.io/?EIO={eio}&transport=polling") as resp:
        body = await resp.text()
    start = body.index("{")
    info = json.loads(body[start : body.index("}", start) + 1])
    sid: str = info["sid"]
    return sid


def sessions(srv: LiveServer) -> int:
    return len(srv.service.sio.eio.sockets)


@pytest.mark.parametrize(
    ("eio", "body"),
    [
        (3, b"garbage!"),  # not a v3 payload
        (4, b"2"),  # a PING, which only a v3 client may send
        (3, b"1:2" * 17),  # more than 16 packets in one payload
        (3, b'9:42["x",x]'),  # a Socket.IO packet that does not decode
    ],
)
async def test_a_malformed_post_is_answered_at_once_and_ends_its_session(
    eio: int, body: bytes
) -> None:
    async with live_server(max_message_size=LIMIT) as srv, aiohttp.ClientSession() as http:
        sid = await open_session(http, srv.url, eio)
        url = f"{srv.url}/socket.io/?EIO={eio}&transport=polling&sid={sid}"
        async with http.post(url, data=body, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            assert resp.status == 400
        await eventually(lambda: sessions(srv) == 0, what="the session to end")


async def test_oversized_and_unfinished_posts_hold_nothing() -> None:
    async with live_server(max_message_size=LIMIT) as srv:
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as http:
            sids = [await open_session(http, srv.url, 3) for _ in range(20)]
        for sid in sids:
            # Headers only: a body over the limit is announced, then the
            # client goes away.
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(
                f"POST /socket.io/?EIO=3&transport=polling&sid={sid} HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nContent-Length: {LIMIT + 1}\r\n\r\n".encode()
            )
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 5)
            assert status.startswith(b"HTTP/1.1 400"), status
            writer.close()
        await eventually(lambda: sessions(srv) == 0, what="every session to end")
        # A body that stops halfway ends its session after the body deadline
        # at the latest; here the client closes, which ends it at once.
        async with aiohttp.ClientSession() as http:
            sid = await open_session(http, srv.url, 3)
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(
            f"POST /socket.io/?EIO=3&transport=polling&sid={sid} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n10:4".encode()
        )
        await writer.drain()
        writer.close()
        started = loop.time()
        await eventually(lambda: sessions(srv) == 0, timeout=15, what="the session to end")
        assert loop.time() - started < 12


async def test_a_body_that_arrives_slowly_is_read_whole() -> None:
    async with live_server() as srv, aiohttp.ClientSession() as http:
        sid = await open_session(http, srv.url, 3)
        packets = ["42" + json.dumps(["no-such-event", "x" * 20_000]) for _ in range(16)]
        body = "".join(f"{len(p)}:{p}" for p in packets).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(
            f"POST /socket.io/?EIO=3&transport=polling&sid={sid} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        for i in range(0, len(body), 50_000):
            writer.write(body[i : i + 50_000])
            await writer.drain()
            await asyncio.sleep(0.05)
        status = await asyncio.wait_for(reader.readline(), 5)
        assert status.startswith(b"HTTP/1.1 200"), status
        writer.close()
        assert sessions(srv) == 1


def request_handlers() -> int:
    """aiohttp's tasks serving a connection each (this process's server)."""
    return sum(1 for t in asyncio.all_tasks() if "RequestHandler.start" in repr(t.get_coro()))


async def test_a_poll_whose_client_went_away_ends_at_once() -> None:
    # Without that, the parked poll would wait out the ping interval (25 s).
    async with live_server() as srv, aiohttp.ClientSession() as http:
        sid = await open_session(http, srv.url, 3)
        before = request_handlers()
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(
            f"GET /socket.io/?EIO=3&transport=polling&sid={sid} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\n\r\n".encode()
        )
        await writer.drain()
        await eventually(lambda: request_handlers() == before + 1, what="the poll to park")
        writer.close()
        await eventually(lambda: request_handlers() == before, timeout=5, what="the poll to end")
        # python-engineio ends the session of a poll cut short; its client
        # (engine.io-client) takes a failed poll for a lost transport anyway.
        await eventually(lambda: sessions(srv) == 0, timeout=5, what="the session to end")
