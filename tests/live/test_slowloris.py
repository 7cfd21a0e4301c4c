"""Half-sent requests cannot hold connections: a deadline for the first
request's headers, and TCP connections capped per client address at accept."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.eio3 import Eio3Client
from tests.support.live import live_server
from tests.support.wait import eventually
from wsstar.server.admission import Limits
from wsstar.server.engineio import tcp

PARTIAL = b"GET /socket.io/?EIO=3&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: "


async def closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), timeout) == b""
    except (ConnectionResetError, TimeoutError):
        return False


async def test_headers_that_never_finish_are_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "HEADER_DEADLINE", 0.5)
    async with live_server() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(PARTIAL)
        await writer.drain()
        assert await closed_by_server(reader, 5)
        writer.close()
        # A request that completes its headers in time is served as usual.
        client = await Eio3Client.connect(srv.port)
        await asyncio.sleep(1.0)  # past the deadline: it applies to headers only
        assert await client.call("ss-dial", "/a", "/b", "c") == ["Not authorized for this address"]
        await client.close()


async def test_tcp_connections_per_address_are_capped_at_accept() -> None:
    limits = Limits(max_connections_per_ip=2, limit_loopback=True)
    async with live_server(limits=limits) as srv:
        held = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(4)]
        for _, writer in held:
            writer.write(PARTIAL)
            await writer.drain()
        await eventually(lambda: srv.service.admission._tcp.get("127.0.0.1") == 4)
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        assert await closed_by_server(reader, 5)
        writer.close()
        assert srv.service.admission.refused["tcp_per_ip"] == 1
        for _, w in held:
            w.close()
        await eventually(
            lambda: srv.service.admission._tcp == {}, what="every connection counted out"
        )


async def test_loopback_clients_are_not_capped_by_default() -> None:
    async with live_server(limits=Limits(max_connections_per_ip=1)) as srv:
        held = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(5)]
        client = await Eio3Client.connect(srv.port)
        assert await client.call("ss-dial", "/a", "/b", "c") == ["Not authorized for this address"]
        await client.close()
        for _, w in held:
            w.close()
        assert srv.service.admission.refused["tcp_per_ip"] == 0
