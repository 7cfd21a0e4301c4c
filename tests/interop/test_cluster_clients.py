"""The published client on a cluster of two wsstar nodes sharing one Redis.

Both nodes sit behind one loopback port (tests/support/forwarder.py), as
behind a load balancer, so every client joins with the same server URL and
the forwarder decides which node each connection reaches.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

import pytest

from tests.interop.harness import NodeAgent
from tests.support.cluster import health, nodes, until_health
from tests.support.forwarder import Forwarder
from tests.support.redis import RedisServer
from tests.support.subject import Subject
from tests.support.v4 import V4Peer

pytestmark = pytest.mark.wsstar_only("the reference has no cluster mode")


def star(forwarder: Forwarder) -> str:
    return f"/ip4/127.0.0.1/tcp/{forwarder.port}/ws/p2p-websocket-star"


@dataclasses.dataclass
class Cluster:
    redis: RedisServer
    one: Subject
    two: Subject
    #: The one URL clients use; new connections reach ``forwarder.target``.
    forwarder: Forwarder


@contextlib.asynccontextmanager
async def cluster(first: int = 0) -> AsyncIterator[Cluster]:
    """Redis, two nodes, and a forwarder sending new connections to node ``first``."""
    async with (
        RedisServer.running() as redis,
        nodes(redis, 2) as (one, two),
        Forwarder.running((one, two)[first].port) as forwarder,
    ):
        yield Cluster(redis, one, two, forwarder)


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
