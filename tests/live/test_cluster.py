"""Server processes joined through a real Redis are one swarm: discovery
across nodes both ways, last join wins across nodes, a node's peers vanish
when it stops or dies, and a Redis outage is served through and healed."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from tests.support.cluster import TTL, health, nodes, until_health
from tests.support.eio3 import Eio3Client, join
from tests.support.identity import Identity
from tests.support.redis import RedisServer
from tests.support.subject import Subject
from tests.support.wait import TIMEOUT

#: The port every address names: behind one balanced URL all nodes are
#: reached by the same one, so a peer's address is the same on every node.
SHARED_PORT = 9090


async def joined_on(node: Subject, ident: Identity | None = None) -> tuple[Eio3Client, str]:
    client = await Eio3Client.connect(node.port)
    ident = ident or Identity.generate()
    reply = await join(client, ident, SHARED_PORT)
    assert reply[:2] == [None, None], reply
    return client, ident.address(SHARED_PORT)


async def announced(client: Eio3Client, address: str) -> None:
    while (await client.next_event("ws-peer"))[1] != [address]:
        pass


async def relayed_across_nodes(
    dialer: Eio3Client, dialer_addr: str, listener: Eio3Client, listener_addr: str
) -> None:
    """A dial and its relay between sockets of two nodes, with exactly what
    one node shows: held early chunk first, empty chunks, ends both ways."""
    dial = asyncio.ensure_future(dialer.call("ss-dial", dialer_addr, listener_addr, "X"))
    assert await dialer.next_event() == ("socket.io-pull-stream.accept.X.dialer", [])
    await dialer.emit("socket.io-pull-stream.queue.X.dialer", b"early")
    _, args = await listener.next_event("ss-incomming")
    assert args == ["X", dialer_addr]
    await listener.accept_dial("X")
    assert await listener.next_event() == ("socket.io-pull-stream.queue.X.dialer", [b"early"])
    assert await listener.next_event() == ("socket.io-pull-stream.accept.X.listener", [])
    assert await asyncio.wait_for(dial, TIMEOUT) == []
    await dialer.emit("socket.io-pull-stream.accept.X.listener")
    await dialer.emit("socket.io-pull-stream.queue.X.dialer", b"hello")
    await dialer.emit("socket.io-pull-stream.queue.X.dialer", b"")
    await listener.emit("socket.io-pull-stream.queue.X.listener", b"back")
    await dialer.emit("socket.io-pull-stream.error.X.dialer", True)
    await listener.emit("socket.io-pull-stream.error.X.listener", "listener failed")
    assert await listener.next_event() == ("socket.io-pull-stream.queue.X.dialer", [b"hello"])
    assert await listener.next_event() == ("socket.io-pull-stream.queue.X.dialer", [b""])
    assert await listener.next_event() == ("socket.io-pull-stream.error.X.dialer", [True])
    assert await dialer.next_event() == ("socket.io-pull-stream.queue.X.listener", [b"back"])
    assert await dialer.next_event() == (
        "socket.io-pull-stream.error.X.listener",
        ["listener failed"],
    )
    # Nobody joined this one, on any node.
    assert await dialer.call("ss-dial", dialer_addr, listener_addr + "x", "Y") == ["Peer not found"]


async def test_peers_on_two_nodes_find_each_other() -> None:
    async with RedisServer.running() as redis, nodes(redis, 2) as (one, two):
        a, a_addr = await joined_on(one)
        await until_health(two, lambda h: h["peers"] == 1)
        b = await Eio3Client.connect(two.port)
        ident = Identity.generate()
        # The join ack on node two lists the peer of node one ...
        reply = await join(b, ident, SHARED_PORT)
        assert reply == [None, None, [a_addr]]
        # ... and node one announces the newcomer of node two.
        await asyncio.wait_for(announced(a, ident.address(SHARED_PORT)), TIMEOUT)
        await relayed_across_nodes(b, ident.address(SHARED_PORT), a, a_addr)
        for node in (one, two):
            body = await health(node)
            assert body["peers"] == 2
            assert body["local_peers"] == 1
            assert body["cluster"]["redis"] == "up"
        async with aiohttp.ClientSession() as http, http.get(one.url + "/") as resp:
            page = await resp.text()
        node_one = (await health(one))["cluster"]["node"]
        assert f"Cluster node <code>{node_one}</code>" in page
        assert "2 peers" in page.replace('</span> <span id="peers-noun">', " ")
        metrics = await one.metrics()
        assert metrics["rendezvous_peers"] == 2
        assert metrics["wsstar_local_peers"] == 1
        assert metrics["wsstar_cluster_nodes"] == 2
        assert metrics["wsstar_cluster_redis_up"] == 1
        await a.close()
        await b.close()
        for node in (one, two):
            await until_health(node, lambda h: h["peers"] == 0)
        async with redis.client() as client:
            assert await client.hlen("wsstar:peers") == 0
            assert [k async for k in client.scan_iter("wsstar:owned:*")] == []


@pytest.mark.parametrize(
    ("how", "within"),
    [
        # Killed: the TTL, and a liveness check a second at most after it.
        (signal.SIGKILL, float(TTL) + 2),
        # Stopped: the node removes its own peers, well before the TTL.
        (signal.SIGTERM, float(TTL) / 2),
    ],
)
async def test_a_gone_node_s_peers_vanish(how: signal.Signals, within: float) -> None:
    async with RedisServer.running() as redis, nodes(redis, 2) as (one, two):
        a, _ = await joined_on(one)
        b, _ = await joined_on(two)
        await until_health(one, lambda h: h["peers"] == 2)
        two.proc.send_signal(how)
        await asyncio.wait_for(two.proc.wait(), TIMEOUT)
        loop = asyncio.get_running_loop()
        gone = loop.time()
        await until_health(one, lambda h: h["peers"] == 1 and h["cluster"]["nodes"] == 1)
        assert loop.time() - gone <= within
        async with redis.client() as client:
            assert len(await client.hgetall("wsstar:peers")) == 1
        await a.close()
        await b.close()


async def test_the_last_join_wins_across_nodes() -> None:
    async with RedisServer.running() as redis, nodes(redis, 2) as (one, two):
        ident = Identity.generate()
        old, address = await joined_on(one, ident)
        watcher, _ = await joined_on(two)
        new, _ = await joined_on(two, ident)
        async with redis.client() as client:

            async def owner_node() -> str:
                entry = await client.hget("wsstar:peers", address)
                assert entry is not None
                return str(entry).split('"')[1]

            node_two = (await health(two))["cluster"]["node"]
            async with asyncio.timeout(TIMEOUT):
                while True:
                    if await owner_node() == node_two:
                        break
                    await asyncio.sleep(0.05)
        # Listed once everywhere; the old socket's departure no longer takes it.
        for node in (one, two):
            await until_health(node, lambda h: h["peers"] == 2)
        await old.close()
        await until_health(one, lambda h: h["connections"] == 0)
        # A join on node one after the departure: node two sees the changes
        # of node one in order, so a wrong release would show before it.
        marker, _ = await joined_on(one)
        await until_health(two, lambda h: h["peers"] == 3)
        assert (await health(one))["peers"] == 3
        for client_ in (marker, new, watcher):
            await client_.close()
        for node in (one, two):
            await until_health(node, lambda h: h["peers"] == 0)


async def test_a_redis_outage_is_served_through_and_healed() -> None:
    async with RedisServer.running() as redis, nodes(redis, 2) as (one, two):
        a, a_addr = await joined_on(one)
        await until_health(two, lambda h: h["peers"] == 1)
        await redis.stop()
        for node in (one, two):
            await until_health(node, lambda h: h["cluster"]["redis"] == "down")
        # Each node still serves its own peers.
        b, b_addr = await joined_on(one)
        c, _ = await joined_on(two)
        assert (await one.metrics())["wsstar_cluster_redis_up"] == 0
        await a.close()
        await redis.start()
        for node in (one, two):
            await until_health(
                node, lambda h: h["cluster"]["redis"] == "up" and h["peers"] == 2, timeout=20
            )
        async with redis.client() as client:
            entries = await client.hgetall("wsstar:peers")
        assert a_addr not in entries
        assert b_addr in entries
        assert len(entries) == 2
        for client_ in (b, c):
            await client_.close()
        for node in (one, two):
            await until_health(node, lambda h: h["peers"] == 0)
        assert not any("Traceback" in line for line in one.log + two.log)


async def test_churn_across_nodes_leaves_no_table_behind() -> None:
    """Joins, takeovers across nodes, leaves and disconnects; then every
    table, on the nodes and in Redis, is empty."""
    async with RedisServer.running() as redis, nodes(redis, 2) as (one, two):
        idents = [Identity.generate() for _ in range(8)]
        open_: list[Eio3Client] = []
        for cycle in range(64):
            node = (one, two)[cycle % 2]
            ident = idents[cycle % len(idents)]  # the same peer on the other node next time
            client, address = await joined_on(node, ident)
            match cycle % 4:
                case 0:
                    assert await client.call("ss-leave", address) == []
                    await client.close()
                case 1:
                    await client.close()
                case _:
                    open_.append(client)
            if len(open_) > 6:
                await open_.pop(0).close()
        for client in open_:
            await client.close()
        for node in (one, two):
            await until_health(
                node, lambda h: (h["peers"], h["local_peers"], h["connections"]) == (0, 0, 0)
            )
        async with redis.client() as client:
            assert await client.hlen("wsstar:peers") == 0
            assert [k async for k in client.scan_iter("wsstar:owned:*")] == []
            live = {(await health(node))["cluster"]["node"] for node in (one, two)}
            assert set(await client.smembers("wsstar:nodes")) == live
