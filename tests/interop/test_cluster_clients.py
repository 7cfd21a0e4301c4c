"""The published client on a cluster of two wsstar nodes sharing one Redis.

Both nodes sit behind one loopback port (tests/support/forwarder.py), as
behind a load balancer, so every client joins with the same server URL and
the forwarder decides which node each connection reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import AsyncIterator

import pytest

from tests.interop.harness import NodeAgent
from tests.support.cluster import TTL, health, nodes, until_health
from tests.support.forwarder import Forwarder
from tests.support.redis import RedisServer
from tests.support.subject import Subject
from tests.support.v4 import V4Peer

pytestmark = pytest.mark.wsstar_only("the reference has no cluster mode")


def star(forwarder: Forwarder) -> str:
    return f"/ip4/127.0.0.1/tcp/{forwarder.port}/ws/p2p-websocket-star"


MIB = 1024 * 1024


@dataclasses.dataclass
class Cluster:
    redis: RedisServer
    nodes: list[Subject]
    #: The one URL clients use; new connections reach ``forwarder.target``.
    forwarder: Forwarder

    @property
    def one(self) -> Subject:
        return self.nodes[0]

    @property
    def two(self) -> Subject:
        return self.nodes[1]


@contextlib.asynccontextmanager
async def cluster(first: int = 0, count: int = 2) -> AsyncIterator[Cluster]:
    """Redis, ``count`` nodes, and a forwarder sending new connections to node ``first``."""
    async with (
        RedisServer.running() as redis,
        nodes(redis, count) as started,
        Forwarder.running(started[first].port) as forwarder,
    ):
        yield Cluster(redis, started, forwarder)


async def listening(agent: NodeAgent, on: Cluster, name: str, key_type: str) -> str:
    await agent.request("create", name=name, keyType=key_type)
    reply = await agent.request("listen", name=name, server=star(on.forwarder))
    addr: str = reply["addr"]
    return addr


async def test_nodes_on_two_servers_discover_each_other_both_ways(agent: NodeAgent) -> None:
    async with cluster(0) as c:
        one, two, forwarder = c.one, c.two, c.forwarder
        a = await listening(agent, c, "a", "rsa")
        forwarder.target = two.port
        await until_health(two, lambda h: h["peers"] == 1)
        b = await listening(agent, c, "b", "secp256k1")
        # b hears of a (join ack, node two), a of b (ws-peer, node one).
        assert (await agent.next_event("peer", lambda e: e["node"] == "b"))["addr"] == a
        assert (await agent.next_event("peer", lambda e: e["node"] == "a"))["addr"] == b
        for node in (one, two):
            body = await health(node)
            assert (body["peers"], body["local_peers"]) == (2, 1)


async def test_a_v4_client_and_a_v2_node_meet_across_nodes(agent: NodeAgent) -> None:
    async with cluster(1) as c:
        one, two, forwarder = c.one, c.two, c.forwarder
        a = await listening(agent, c, "a", "ed25519")
        await until_health(one, lambda h: h["peers"] == 1)
        v4 = V4Peer()
        await v4.connect(one.url)
        try:
            assert await v4.join(forwarder.port) == [None, None, [a]]
            v4_addr = v4.ident.address(forwarder.port)
            event = await agent.next_event("peer", lambda e: e["addr"] == v4_addr)
            assert event["id"] == v4.ident.peer_id
        finally:
            await v4.sio.disconnect()
        await until_health(two, lambda h: h["peers"] == 1)


async def test_a_node_that_moves_to_another_server_takes_its_address_along(
    agent: NodeAgent,
) -> None:
    async with cluster(0) as c:
        redis, one, two, forwarder = c.redis, c.one, c.two, c.forwarder
        a = await listening(agent, c, "a", "ed25519")
        b = await listening(agent, c, "b", "ed25519")
        await until_health(two, lambda h: h["peers"] == 2 and h["local_peers"] == 0)
        # The connections drop; the clients reconnect, now to node two, and
        # join again with the same addresses.
        forwarder.target = two.port
        await forwarder.cut()
        for node, local in ((one, 0), (two, 2)):
            await until_health(
                node, lambda h, local=local: h["peers"] == 2 and h["local_peers"] == local
            )
        async with redis.client() as client:
            entries = await client.hgetall("wsstar:peers")
        assert sorted(entries) == sorted([a, b])
        node_two = (await health(two))["cluster"]["node"]
        assert all(node_two in entry for entry in entries.values()), entries


async def test_joins_during_a_redis_outage_are_known_everywhere_once_it_is_back(
    agent: NodeAgent,
) -> None:
    async with cluster(0) as c:
        redis, one, two, forwarder = c.redis, c.one, c.two, c.forwarder
        a = await listening(agent, c, "a", "ed25519")
        await until_health(two, lambda h: h["peers"] == 1)
        await redis.stop()
        await until_health(two, lambda h: h["cluster"]["redis"] == "down")
        forwarder.target = two.port
        b = await listening(agent, c, "b", "rsa")
        # Node two still knows a from before the outage.
        assert (await agent.next_event("peer", lambda e: e["node"] == "b"))["addr"] == a
        await redis.start()
        # Once both are back in step, node one announces b to a.
        assert (await agent.next_event("peer", lambda e: e["node"] == "a", timeout=20))["addr"] == b
        for node in (one, two):
            await until_health(node, lambda h: h["cluster"]["redis"] == "up" and h["peers"] == 2)


@pytest.mark.parametrize("key_type", ["rsa", "ed25519", "secp256k1"])
async def test_one_mib_echoes_both_ways_across_nodes(agent: NodeAgent, key_type: str) -> None:
    async with cluster(0) as c:
        a = await listening(agent, c, "a", key_type)
        c.forwarder.target = c.two.port
        b = await listening(agent, c, "b", key_type)
        await until_health(c.one, lambda h: h["peers"] == 2 and h["local_peers"] == 1)
        for dialer, target in (("b", a), ("a", b)):
            result = await agent.request(
                "dial_echo", name=dialer, addr=target, bytes=MIB, timeout=60
            )
            assert result["bytes"] == MIB
            assert result["received"] == result["sent"]
        metrics = await c.one.metrics()
        assert metrics['wsstar_cluster_dials_total{direction="out"}'] == 1
        assert metrics['wsstar_cluster_dials_total{direction="in"}'] == 1
        for direction in ("in", "out"):
            relayed = metrics[f'wsstar_cluster_relayed_bytes_total{{direction="{direction}"}}']
            assert relayed >= 2 * MIB


async def test_twenty_parallel_dials_across_nodes_all_echo(agent: NodeAgent) -> None:
    async with cluster(1) as c:
        a = await listening(agent, c, "a", "ed25519")
        c.forwarder.target = c.one.port
        await listening(agent, c, "b", "ed25519")
        await until_health(c.one, lambda h: h["peers"] == 2)
        reply = await agent.request(
            "parallel_dial_echo", name="b", addr=a, count=20, bytes=64 * 1024, timeout=60
        )
        results = reply["results"]
        assert len(results) == 20
        assert all("error" not in r and r["received"] == r["sent"] for r in results), results


async def test_a_dial_to_an_address_nobody_joined_is_not_found(agent: NodeAgent) -> None:
    async with cluster(0) as c:
        await listening(agent, c, "a", "ed25519")
        offline = star(c.forwarder) + "/ipfs/QmWHKoNV8TnVMhedbxHxDDpFFsi5BToKNuAjVKAWbjRGK7"
        reply = await agent.try_request("dial", name="a", addr=offline)
        assert reply == {"id": reply["id"], "ok": False, "error": "Peer not found"}


async def test_three_nodes_are_one_swarm(agent: NodeAgent) -> None:
    async with cluster(0, count=3) as c:
        addrs = {}
        for name, node in zip("abc", c.nodes, strict=True):
            c.forwarder.target = node.port
            addrs[name] = await listening(agent, c, name, "ed25519")
        for node in c.nodes:
            await until_health(node, lambda h: h["peers"] == 3 and h["local_peers"] == 1)
        for dialer, target in (("c", "a"), ("a", "b"), ("b", "c")):
            result = await agent.request(
                "dial_echo", name=dialer, addr=addrs[target], bytes=64 * 1024, timeout=30
            )
            assert result["received"] == result["sent"]


async def test_a_killed_node_ends_streams_to_its_peers_and_they_vanish(
    agent: NodeAgent,
) -> None:
    async with cluster(0) as c:
        a = await listening(agent, c, "a", "ed25519")  # listens and echoes, on node one
        c.forwarder.target = c.two.port
        await listening(agent, c, "b", "ed25519")
        await until_health(c.two, lambda h: h["peers"] == 2)
        await agent.request("open_stream", name="b", addr=a, stream="s")
        await agent.request("write", stream="s", bytes=1000)
        await agent.next_event("stream_data", lambda e: e["stream"] == "s" and e["bytes"] == 1000)
        # a's reconnections go to the dead node, so it stays away.
        c.forwarder.target = c.one.port
        c.one.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(c.one.proc.wait(), 10)
        loop = asyncio.get_running_loop()
        killed = loop.time()
        # The stream ends for the survivor as soon as the link breaks ...
        end = await agent.next_event("stream_end", lambda e: e["stream"] == "s")
        assert end["bytes"] == 1000
        # ... and the dead node's peer vanishes within the TTL.
        await until_health(c.two, lambda h: h["peers"] == 1 and h["cluster"]["nodes"] == 1)
        assert loop.time() - killed <= float(TTL) + 2
        reply = await agent.try_request("dial", name="b", addr=a)
        assert reply.get("error") == "Peer not found"
