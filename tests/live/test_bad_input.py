"""Bad input gets a clear error ack when it carried an ack id, and never affects
anyone else: the server keeps serving a well-behaved client afterwards."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.support.eio3 import TIMEOUT, Eio3Client
from tests.support.identity import Identity
from tests.support.live import LiveServer, live_server
from tests.support.wait import eventually
from wsstar.wire.reasons import Reason


async def assert_still_serving(server: LiveServer) -> None:
    client = await Eio3Client.connect(server.port)
    ident = Identity.generate()
    try:
        addr = ident.address(server.port)
        err, nonce = await client.call("ss-join", addr, ident.marshalled_public_key.hex())
        reply = await client.call("ss-join", addr, ident.sign_hex(nonce))
        assert reply[:2] == [None, None]
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("event", "args", "expected"),
    [
        ("ss-join", [], "Bad request: ss-join expects (multiaddr, string)"),
        ("ss-join", [1, 2], "Bad request: ss-join expects (multiaddr, string)"),
        ("ss-join", ["foo", "aa"], Reason.INVALID_MULTIADDR.value),
        (
            "ss-join",
            ["/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/ipfs/Qm" + "a" * 5000, "aa"],
            Reason.INVALID_MULTIADDR.value,
        ),
        (
            "ss-join",
            ["/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star", "a" * 100_000],
            "Bad request: challenge data too long",
        ),
        (
            "ss-join",
            [{"a": 1}, None],
            "Bad request: ss-join expects (multiaddr, string)",
        ),
        (
            "ss-dial",
            ["/a", "/b"],
            "Bad request: ss-dial expects (multiaddr, multiaddr, dial id)",
        ),
        (
            "ss-dial",
            ["/a", "/b", 7],
            "Bad request: ss-dial expects (multiaddr, multiaddr, dial id)",
        ),
        (
            "ss-dial",
            ["/a", "/b", "x" * 1000],
            "Bad request: ss-dial expects (multiaddr, multiaddr, dial id)",
        ),
        ("ss-dial", ["/ip4/1.2.3.4", "/ip4/1.2.3.5", "id"], Reason.NOT_AUTHORIZED.value),
        ("no-such-event", [1], "Unknown event: no-such-event"),
    ],
)
async def test_bad_requests_get_clear_error_acks(
    server: LiveServer, event: str, args: list[object], expected: str
) -> None:
    client = await Eio3Client.connect(server.port)
    try:
        assert await client.call(event, *args) == [expected]
    finally:
        await client.close()
    await assert_still_serving(server)


@pytest.mark.parametrize("data", ["[5]", "[]", '{"a":1}', "[null]"])
async def test_an_event_without_a_name_is_answered(server: LiveServer, data: str) -> None:
    client = await Eio3Client.connect(server.port)
    try:
        assert await client.call_raw(data) == ["Bad request: event name missing"]
    finally:
        await client.close()
    await assert_still_serving(server)


async def test_requests_without_ack_are_ignored_like_the_reference(server: LiveServer) -> None:
    client = await Eio3Client.connect(server.port)
    ident = Identity.generate()
    try:
        await client.emit("ss-join", ident.address(server.port), ident.marshalled_public_key.hex())
        await client.emit("ss-dial", "/a", "/b", "c")
        await client.emit("socket.io-pull-stream.queue.unknown.dialer", b"x")
        await client.emit("socket.io-pull-stream.error.unknown.dialer", True)
        # Still connected and answering: a later request is served normally.
        assert await client.call("ss-dial", "/a", "/b", "c") == [Reason.NOT_AUTHORIZED.value]
        assert server.service.core.pending_challenges() == 0
    finally:
        await client.close()


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "x",
        "4",
        "42",
        "42{not json",
        '42{"a":1}',
        "42[]",
        "42[1,2]",
        "4999999999999",
        '45999999-["x",{"_placeholder":true,"num":0}]',
        '451-["x",{"_placeholder":true,"num":5}]',
        b"\x04stray attachment",
        b"\x01",
        b"",
        "b4!!!",
        "9",
    ],
)
async def test_garbage_frames_close_only_that_connection(
    server: LiveServer, frame: str | bytes
) -> None:
    bystander = await Eio3Client.connect(server.port)
    client = await Eio3Client.connect(server.port)
    try:
        await client.send_raw(frame)
        if isinstance(frame, str) and frame.startswith("451-"):
            await client.send_raw(b"\x04attachment")
        await client.send_raw("2")
        # Either the server answered the ping (frame tolerated) or closed us.
        await eventually(lambda: "3" in client.frames or client.closed.is_set())
        assert not bystander.closed.is_set()
        assert await bystander.call("ss-dial", "/a", "/b", "c") == [Reason.NOT_AUTHORIZED.value]
    finally:
        await client.close()
        await bystander.close()
    await assert_still_serving(server)


async def test_oversized_message_closes_only_the_sender() -> None:
    async with live_server(max_message_size=64 * 1024) as srv:
        client = await Eio3Client.connect(srv.port)
        try:
            await client.emit("socket.io-pull-stream.queue.x.dialer", b"\x00" * (128 * 1024))
            await asyncio.wait_for(client.closed.wait(), TIMEOUT)
        finally:
            await client.close()
        await assert_still_serving(srv)


async def test_client_text_cannot_forge_or_flood_log_lines(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wsstar")
    client = await Eio3Client.connect(server.port)
    try:
        forged = "/ip4/1.2.3.4\n2026-12-01 10:00:00,000 INFO wsstar: joined /x from 6.6.6.6"
        await client.call("ss-dial", forged, "/b", "d\nx")
        for _ in range(200):
            await client.call("ss-join", "not a multiaddr", "")
    finally:
        await client.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "wsstar"]
    assert not any("\n" in m for m in messages)
    # 201 refusals from one address: one line now, a count later.
    assert len([m for m in messages if "refused" in m or "failed" in m]) == 1


async def test_a_client_that_stops_reading_is_disconnected_not_queued_for() -> None:
    async with live_server(send_queue_packets=200) as srv:
        client = await Eio3Client.connect(srv.port)
        try:
            client.reading.clear()  # it stops reading, and keeps asking
            for i in range(20_000):
                await client.send_raw(f'42{i}["no-such-event"]')
                if client.closed.is_set() or srv.service.sio.send_queue_overflows:
                    break
            await eventually(lambda: srv.service.core.socket_count() == 0)
            assert srv.service.sio.send_queue_overflows == 1
            assert srv.service.sio.queued_bytes == 0
        finally:
            await client.close()


async def test_a_client_refused_a_thousand_times_in_a_row_is_disconnected(
    server: LiveServer,
) -> None:
    client = await Eio3Client.connect(server.port)
    try:
        for _ in range(999):
            await client.send_raw('421["no-such-event"]')
        assert not client.closed.is_set()
        await client.send_raw('421["no-such-event"]')
        await asyncio.wait_for(client.closed.wait(), TIMEOUT)
    finally:
        await client.close()
