"""Dials and relays between sockets of two nodes: flow control end to end
(nothing lost, nothing buffered without bound, either direction), the stall
timeout and the dial timeout across nodes, and no route, stream or dial left
behind on either node once the sockets are gone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.support.cluster import health, nodes, until_health
from tests.support.eio3 import TIMEOUT, Eio3Client, blast, chunk, joined, open_relay
from tests.support.redis import RedisServer
from tests.support.subject import Subject
from tests.support.wait import eventually
from wsstar.star.relay import BACKLOG_OVERFLOW
from wsstar.wire.reasons import Reason

HIGH = 256 * 1024
#: What a node may hold for one slow receiver on top of the high-water mark:
#: what was on its way when it said it is full, at most the link's own
#: buffer (1 MiB) and the kernel's socket buffers on loopback.
SLACK = 4 * 1024 * 1024
FLAGS = ("--relay-buffer-limit", str(HIGH), "--relay-stall-timeout", "2", "--dial-timeout", "2")


@contextlib.asynccontextmanager
async def two_nodes() -> AsyncIterator[tuple[Subject, Subject]]:
    async with RedisServer.running() as redis, nodes(redis, 2, *FLAGS) as (one, two):
        yield one, two


async def joined_on(node: Subject, *others: Subject) -> tuple[Eio3Client, str]:
    """Joined on ``node``, and known to ``others`` too (a dial from another
    node finds only what that node's view holds).  Their views must be
    settled first: a departure still on its way would spoil the count."""
    before = [(other, (await health(other))["peers"]) for other in others]
    client, address = await joined(node.port)
    for other, peers in before:
        await until_health(other, lambda h, peers=peers: h["peers"] > peers)
    return client, address


async def settled(node: Subject) -> dict[str, float]:
    """The node's metrics once no relay, route, dial or paused sender is left."""

    keys = (
        "wsstar_relay_streams",
        "wsstar_cluster_relay_routes",
        "wsstar_pending_dials",
        "wsstar_relay_paused_senders",
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:
        metrics = await node.metrics()
        left = {k: metrics[k] for k in keys if metrics[k]}
        if not left:
            return metrics
        assert loop.time() < deadline, left
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("sender", ["dialer", "listener"])
async def test_a_fast_sender_and_a_slow_reader_on_another_node_lose_nothing(
    sender: str,
) -> None:
    count = 96  # 6 MiB, read at 4 MB/s
    async with two_nodes() as (one, two):
        (a, addr_a), (b, addr_b) = await joined_on(one, two), await joined_on(two, one)
        try:
            await open_relay(a, addr_a, b, addr_b, "S")
            # The dialer's node keeps the relay; either end may be the fast one.
            source, reader, reader_node = (a, b, two) if sender == "dialer" else (b, a, one)
            stream = f"S.{sender}"
            reader.read_rate = 4e6
            peak = 0.0

            async def watch() -> None:
                nonlocal peak
                while True:
                    metrics = await reader_node.metrics()
                    peak = max(peak, metrics["wsstar_queued_bytes"])
                    await asyncio.sleep(0.02)

            watcher = asyncio.ensure_future(watch())
            try:
                for i in range(count):
                    await source.emit(f"socket.io-pull-stream.queue.{stream}", chunk(i))
                await eventually(
                    lambda: len(reader.chunks.get(stream, ())) == count,
                    timeout=30,
                    what="every chunk",
                )
            finally:
                watcher.cancel()
            assert reader.chunks[stream] == [chunk(i) for i in range(count)]
            # Held near the high-water mark: the sender on the other node was
            # paused, not buffered for.
            assert peak <= HIGH + SLACK, peak
            for node in (one, two):
                assert (await node.metrics())["wsstar_relay_overflows_total"] == 0
        finally:
            await a.close()
            await b.close()
        for node in (one, two):
            await settled(node)


async def test_a_stalled_reader_on_another_node_is_cut_and_the_sender_goes_on() -> None:
    async with two_nodes() as (one, two):
        (a, addr_a), (b, addr_b) = await joined_on(one, two), await joined_on(two, one)
        c, addr_c = await joined_on(two, one)
        others: list[Eio3Client] = []
        try:
            await open_relay(a, addr_a, b, addr_b, "S")
            await open_relay(a, addr_a, c, addr_c, "T")
            b.reading.clear()  # b stops reading altogether, but keeps pinging

            # 32 MiB offered, far more than any buffer.
            blaster = asyncio.ensure_future(blast(a, "S.dialer", 512))
            # Meanwhile another pair on the same two nodes relays over the
            # same link: one slow receiver does not stall it.
            (d, addr_d), (e, addr_e) = await joined_on(one, two), await joined_on(two, one)
            others.extend((d, e))
            await open_relay(d, addr_d, e, addr_e, "U")
            for i in range(32):
                await d.emit("socket.io-pull-stream.queue.U.dialer", chunk(i))
            await eventually(lambda: len(e.chunks.get("U.dialer", ())) == 32, what="chunks")
            assert not a.chunks.get("S.listener")
            assert (await one.metrics())["wsstar_relay_overflows_total"] == 0
            event = await a.next_event("socket.io-pull-stream.error.S.listener", timeout=20)
            assert event == ("socket.io-pull-stream.error.S.listener", [BACKLOG_OVERFLOW])
            await asyncio.wait_for(blaster, TIMEOUT)
            for i in range(16):
                await a.emit("socket.io-pull-stream.queue.T.dialer", chunk(i))
            await a.emit("socket.io-pull-stream.error.T.dialer", True)
            await c.next_event("socket.io-pull-stream.error.T.dialer")
            assert c.chunks["T.dialer"] == [chunk(i) for i in range(16)]
            assert (await one.metrics())["wsstar_relay_overflows_total"] == 1
            assert not b.closed.is_set()
        finally:
            for client in (a, b, c, *others):
                await client.close()
        for node in (one, two):
            await settled(node)


async def test_a_listener_on_another_node_that_never_answers_times_out() -> None:
    async with two_nodes() as (one, two):
        (a, addr_a), (b, addr_b) = await joined_on(one, two), await joined_on(two, one)
        try:
            dial = asyncio.ensure_future(a.call("ss-dial", addr_a, addr_b, "D"))
            await b.next_event("ss-incomming")
            assert await asyncio.wait_for(dial, TIMEOUT) == [Reason.DIAL_TIMEOUT.value]
            # The listener's late answer finds nothing, on either node.
            await b.send_raw(f"43{b.incoming['D']}[]")
            for node in (one, two):
                await settled(node)
        finally:
            await a.close()
            await b.close()


async def test_dials_across_nodes_check_the_listener_there() -> None:
    async with two_nodes() as (one, two):
        (a, addr_a), (b, addr_b) = await joined_on(one, two), await joined_on(two, one)
        c, addr_c = await joined_on(one, two)
        try:
            await open_relay(a, addr_a, b, addr_b, "D")
            # Another dialer reusing the id toward the same listener would mix
            # with the first relay, on another node's socket as on one node's.
            assert await c.call("ss-dial", addr_c, addr_b, "D") == [Reason.DIAL_ID_IN_USE.value]
            # An error from the listener reaches the dialer unchanged.
            dial = asyncio.ensure_future(c.call("ss-dial", addr_c, addr_b, "E"))
            await b.next_event("ss-incomming")
            await b.send_raw(f'43{b.incoming["E"]}["no thanks"]')
            assert await asyncio.wait_for(dial, TIMEOUT) == ["no thanks"]
        finally:
            for client in (a, b, c):
                await client.close()
        for node in (one, two):
            await settled(node)


async def test_relays_across_nodes_leave_nothing_behind() -> None:
    async with two_nodes() as (one, two):
        for cycle in range(6):
            (a, addr_a), (b, addr_b) = await joined_on(one, two), await joined_on(two, one)
            for i in range(5):
                await open_relay(a, addr_a, b, addr_b, f"R{i}")
                await a.emit(f"socket.io-pull-stream.queue.R{i}.dialer", chunk(i))
                await b.emit(f"socket.io-pull-stream.queue.R{i}.listener", chunk(i))
            # A dial still waiting for its answer when the sockets go.
            pending = asyncio.ensure_future(a.call("ss-dial", addr_a, addr_b, "P"))
            await b.next_event("ss-incomming")
            await eventually(
                lambda b=b: len(b.chunks.get("R4.dialer", ())) == 1,
                what="chunks",
            )
            # Either side leaves first, mid-stream.
            first, last = (a, b) if cycle % 2 else (b, a)
            await first.close()
            if first is b:
                assert await asyncio.wait_for(pending, TIMEOUT) == [Reason.DIAL_TARGET_GONE.value]
                for i in range(5):
                    event = f"socket.io-pull-stream.error.R{i}.listener"
                    assert await a.next_event(event) == (event, [True])
            else:
                pending.cancel()
                for i in range(5):
                    event = f"socket.io-pull-stream.error.R{i}.dialer"
                    assert await b.next_event(event) == (event, [True])
            await last.close()
            for node in (one, two):
                await until_health(node, lambda h: h["peers"] == 0 and h["connections"] == 0)
        for node, direction in ((one, "out"), (two, "in")):
            metrics = await settled(node)
            assert metrics[f'wsstar_cluster_dials_total{{direction="{direction}"}}'] == 6 * 6
