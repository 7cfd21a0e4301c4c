"""Relay flow control: a slow receiver slows its sender down instead of
losing data or growing the server; a receiver that takes nothing is cut after
the stall timeout; a sender held paused is not dropped for the heartbeats it
could not send."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tests.support.eio3 import CHUNK, TIMEOUT, Eio3Client, blast, chunk, joined, open_relay
from tests.support.live import LiveServer, live_server
from tests.support.v4 import V4Peer
from tests.support.wait import eventually
from wsstar.star.relay import BACKLOG_OVERFLOW

HIGH = 256 * 1024


@contextlib.asynccontextmanager
async def relayed_pair(
    srv: LiveServer, dial_id: str = "S"
) -> AsyncIterator[tuple[Eio3Client, Eio3Client]]:
    """A dialer and a listener with the relay ``dial_id`` open both ways."""
    (a, addr_a), (b, addr_b) = await joined(srv.port), await joined(srv.port)
    try:
        await open_relay(a, addr_a, b, addr_b, dial_id)
        yield a, b
    finally:
        await a.close()
        await b.close()


def backlog_of(srv: LiveServer, client: Eio3Client) -> int:
    sid = srv.service.sio.manager.sid_from_eio_sid(client.open["sid"], "/")
    return srv.service._clients[sid].session.backlog()


async def test_a_fast_sender_and_a_slow_reader_lose_nothing_and_the_queue_stays_bounded() -> None:
    count = 96  # 6 MiB, read at 4 MB/s
    async with (
        live_server(relay_buffer_limit=HIGH) as srv,
        relayed_pair(srv) as (a, b),
    ):
        b.read_rate = 4e6
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, backlog_of(srv, b))
                await asyncio.sleep(0.005)

        watcher = asyncio.ensure_future(watch())
        try:
            for i in range(count):
                await a.emit("socket.io-pull-stream.queue.S.dialer", chunk(i))
            await eventually(
                lambda: len(b.chunks.get("S.dialer", ())) == count,
                timeout=30,
                what="every chunk",
            )
        finally:
            watcher.cancel()
        assert b.chunks["S.dialer"] == [chunk(i) for i in range(count)]
        assert srv.service.core.streams.overflows == 0
        # Held near the high-water mark: the sender was paused, not buffered.
        assert peak <= HIGH + 4 * CHUNK, peak
        assert len(srv.service.flow) == 0  # nobody held once it is all through


async def test_a_stalled_reader_is_cut_after_the_stall_timeout_and_the_sender_goes_on() -> None:
    async with live_server(relay_buffer_limit=HIGH, relay_stall_timeout=1.0) as srv:
        (a, addr_a), (b, addr_b) = await joined(srv.port), await joined(srv.port)
        c, addr_c = await joined(srv.port)
        try:
            await open_relay(a, addr_a, b, addr_b, "S")
            await open_relay(a, addr_a, c, addr_c, "T")
            b.reading.clear()  # b stops reading altogether, but keeps pinging

            # 32 MiB offered, far more than any buffer.
            blaster = asyncio.ensure_future(blast(a, "S.dialer", 512))
            event = await a.next_event("socket.io-pull-stream.error.S.listener", timeout=20)
            assert event == ("socket.io-pull-stream.error.S.listener", [BACKLOG_OVERFLOW])
            assert srv.service.core.streams.overflows == 1
            await asyncio.wait_for(blaster, TIMEOUT)
            # The sender's other stream was held meanwhile, and now flows.
            for i in range(16):
                await a.emit("socket.io-pull-stream.queue.T.dialer", chunk(i))
            await a.emit("socket.io-pull-stream.error.T.dialer", True)
            await c.next_event("socket.io-pull-stream.error.T.dialer")
            assert c.chunks["T.dialer"] == [chunk(i) for i in range(16)]
            # What waits for the stalled reader stays bounded.
            assert backlog_of(srv, b) <= HIGH + 4 * CHUNK
            assert not b.closed.is_set()
        finally:
            for client in (a, b, c):
                await client.close()


async def test_a_paused_v2_sender_outlives_its_heartbeat_timeout() -> None:
    # v2 clients ping; a paused one's pings wait unread behind its chunks.
    async with (
        live_server(relay_buffer_limit=HIGH, ping_interval=0.3, ping_timeout=0.3) as srv,
        relayed_pair(srv) as (a, b),
    ):
        b.reading.clear()
        blaster = asyncio.ensure_future(blast(a, "S.dialer", 256))
        await eventually(lambda: len(srv.service.flow) == 1, what="the sender to be held")
        pongs = a.frames.count("3")
        await asyncio.sleep(2.0)  # over three heartbeat timeouts
        assert len(srv.service.flow) == 1 and not a.closed.is_set()
        # Its pings are not read, yet pongs keep coming: a real v2 client
        # would otherwise give up on its own ping timeout.
        assert a.frames.count("3") >= pongs + 3
        b.reading.set()
        await asyncio.wait_for(blaster, 30)
        await eventually(lambda: len(b.chunks.get("S.dialer", ())) == 256, timeout=30)
        assert b.chunks["S.dialer"] == [chunk(i) for i in range(256)]
        assert srv.service.core.streams.overflows == 0


async def test_a_paused_v4_sender_outlives_its_heartbeat_timeout() -> None:
    # v4 servers ping; a paused client's pongs wait unread.
    async with live_server(relay_buffer_limit=HIGH, ping_interval=0.3, ping_timeout=0.3) as srv:
        a = V4Peer()
        await a.connect(srv.url)
        b, addr_b = await joined(srv.port)
        b.collect_chunks = True
        try:
            addr_a = a.ident.address(srv.port)
            assert (await a.join(srv.port))[:2] == [None, None]
            dial = asyncio.ensure_future(
                a.sio.call("ss-dial", (addr_a, addr_b, "V"), timeout=TIMEOUT)
            )
            await b.next_event("ss-incomming")
            await b.accept_dial("V")
            assert await asyncio.wait_for(dial, TIMEOUT) is None  # an empty ack
            b.reading.clear()

            async def blast_v4() -> None:
                for i in range(256):  # more than the kernel buffers between them
                    await a.sio.emit("socket.io-pull-stream.queue.V.dialer", chunk(i))

            blaster = asyncio.ensure_future(blast_v4())
            await eventually(lambda: len(srv.service.flow) == 1, what="the sender to be held")
            await asyncio.sleep(2.0)  # over three heartbeat timeouts
            assert a.sio.connected and len(srv.service.flow) == 1
            b.reading.set()
            await asyncio.wait_for(blaster, 30)
            await eventually(lambda: len(b.chunks.get("V.dialer", ())) == 256, timeout=30)
            assert b.chunks["V.dialer"] == [chunk(i) for i in range(256)]
            assert a.sio.connected
        finally:
            await a.sio.disconnect()
            await b.close()
