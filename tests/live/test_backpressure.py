"""A receiver that stops reading cannot make the server buffer without bound."""

from __future__ import annotations

import asyncio

from tests.support.eio3 import TIMEOUT, joined
from tests.support.live import live_server
from wsstar.star.relay import BACKLOG_OVERFLOW

CHUNK = 64 * 1024
LIMIT = 1024 * 1024


async def test_stalled_reader_gets_its_stream_cut_and_memory_stays_bounded() -> None:
    async with live_server(relay_buffer_limit=LIMIT) as srv:
        (a, addr_a), (b, addr_b) = await joined(srv.port), await joined(srv.port)
        try:
            dial = asyncio.ensure_future(a.call("ss-dial", addr_a, addr_b, "S"))
            await b.next_event("ss-incomming")
            await b.accept_dial("S")
            assert await asyncio.wait_for(dial, TIMEOUT) == []
            await a.emit("socket.io-pull-stream.accept.S.listener")
            # b stops reading altogether.
            assert b._reader is not None
            b._reader.cancel()
            core = srv.service.core
            for _ in range(1024):  # 64 MiB offered
                await a.emit("socket.io-pull-stream.queue.S.dialer", b"\0" * CHUNK)
                if core.streams.overflows:
                    break
            assert core.streams.overflows == 1
            # The sender learns through the other half of its connection.
            event = await a.next_event("socket.io-pull-stream.error.S.listener")
            assert event == ("socket.io-pull-stream.error.S.listener", [BACKLOG_OVERFLOW])
            sid_b = srv.service.sio.manager.sid_from_eio_sid(b.open["sid"], "/")
            queued = srv.service._clients[sid_b].session.queued_bytes
            assert queued <= LIMIT + 2 * CHUNK
            assert len(core.streams) == 0
        finally:
            await a.close()
            await b.close()
