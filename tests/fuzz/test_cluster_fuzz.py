"""Random relays between two cluster nodes: joins, dials with colliding ids,
answers, refusals and silence, chunks on streams real and made up, ends and
disconnects, in a random order from a seeded generator.  Afterwards no node
holds a stream, route, dial or paused sender, Redis holds no peer, and
neither node logged an error."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.live.test_cluster_relay import FLAGS, settled
from tests.support.cluster import nodes, until_health
from tests.support.eio3 import Eio3Client, joined
from tests.support.redis import RedisServer
from tests.support.subject import Subject

STEPS = 150
DIAL_IDS = ("a", "b", "c")


async def _step(
    rng: random.Random,
    nodes_: list[Subject],
    peers: list[tuple[Eio3Client, str]],
    dials: list[asyncio.Future[list[object]]],
) -> None:
    roll = rng.random()
    if roll < 0.15 or len(peers) < 2:
        node = rng.choice(nodes_)
        peers.append(await joined(node.port))
        return
    (a, addr_a), (b, addr_b) = rng.sample(peers, 2)
    if roll < 0.35:
        # Not awaited: the answer may come much later, or never.
        dial = a.call("ss-dial", addr_a, addr_b, rng.choice(DIAL_IDS), timeout=5)
        dials.append(asyncio.ensure_future(dial))
    elif roll < 0.5 and b.incoming:
        dial_id, ack = rng.choice(list(b.incoming.items()))
        del b.incoming[dial_id]
        if rng.random() < 0.7:
            await b.emit(f"socket.io-pull-stream.accept.{dial_id}.dialer")
            await b.send_raw(f"43{ack}[]")
        else:
            await b.send_raw(f'43{ack}["no"]')
    elif roll < 0.8:
        half = rng.choice((".dialer", ".listener"))
        stream = rng.choice(DIAL_IDS) + half
        kind = rng.choice(("queue", "queue", "accept", "error"))
        value: object = rng.randbytes(rng.randrange(0, 4096)) if kind == "queue" else True
        await a.emit(
            f"socket.io-pull-stream.{kind}.{stream}", *([] if kind == "accept" else [value])
        )
    elif roll < 0.9:
        await a.call("ss-leave", addr_a)
    else:
        peers.remove((a, addr_a))
        await a.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_relays_across_nodes_leave_nothing_behind(seed: int) -> None:
    rng = random.Random(seed)
    async with RedisServer.running() as redis, nodes(redis, 2, *FLAGS) as started:
        peers: list[tuple[Eio3Client, str]] = []
        dials: list[asyncio.Future[list[object]]] = []
        try:
            for _ in range(STEPS):
                await _step(rng, started, peers, dials)
        finally:
            for client, _ in peers:
                await client.close()
            # Answered, refused, or cut short by their dialer's departure.
            await asyncio.gather(*dials, return_exceptions=True)
        crossed = 0.0
        for node in started:
            await until_health(node, lambda h: h["peers"] == 0 and h["connections"] == 0)
            crossed += (await settled(node))['wsstar_cluster_dials_total{direction="out"}']
            assert not [line for line in node.log if " ERROR " in line or "Traceback" in line]
        assert crossed > 0  # some dials did cross between the nodes
        async with redis.client() as client:
            assert await client.hlen("wsstar:peers") == 0
