"""How relayed bytes could travel between cluster nodes, measured side by side.

    .venv/bin/python bench/relay_paths.py [--mib 64] [--repeats 5]

Moves ``--mib`` MiB in 64 KiB chunks from a sender to a receiver (two
clients in one asyncio process), in order, three ways, alternating:

* a node link (wsstar.cluster.links, what wsstar uses);
* a Redis stream (XADD by the sender, XREAD BLOCK by the receiver, trimmed as
  read), which keeps order and survives a slow reader;
* Redis pub/sub (PUBLISH / SUBSCRIBE), which drops a subscriber that falls
  behind its output buffer limit.

Prints MB/s and the CPU seconds Redis itself spent, medians, with every run
under them.  Needs redis-server (as the test suite does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from tests.support.redis import RedisServer  # noqa: E402
from wsstar.cluster import frames  # noqa: E402
from wsstar.cluster.links import LinkAddress, NodeLinks  # noqa: E402
from wsstar.directory import NodeId  # noqa: E402

CHUNK = 64 * 1024
MB = 1e6


async def redis_cpu(client: aioredis.Redis) -> float:
    info: dict[str, Any] = await client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


class _Counter:
    def __init__(self, total: int) -> None:
        self.got = 0
        self.total = total
        self.done = asyncio.Event()

    def link_message(self, node: NodeId, header: frames.Header, payload: bytes) -> None:
        self.got += len(payload)
        if self.got >= self.total:
            self.done.set()

    def link_lost(self, node: NodeId) -> None:
        pass

    def link_ready(self, node: NodeId) -> None:
        pass


async def via_link(total: int, _: str) -> float:
    counter = _Counter(total)
    receiver = NodeLinks(NodeId("b"), counter, _no_lookup)
    port = await receiver.listen("127.0.0.1", 0)
    address = LinkAddress("127.0.0.1", port, receiver.token)

    async def lookup(node: NodeId) -> LinkAddress | None:
        return address

    ready = asyncio.Event()

    class Sender(_Counter):
        def link_ready(self, node: NodeId) -> None:
            ready.set()

    sender = NodeLinks(NodeId("a"), Sender(0), lookup)
    chunk = bytes(CHUNK)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        sender.send(NodeId("b"), ["c", "sid", "s.dialer"], chunk)
        sent += CHUNK
        if sender.full(NodeId("b")):
            ready.clear()
            await ready.wait()
    await counter.done.wait()
    elapsed = time.perf_counter() - start
    await sender.close()
    await receiver.close()
    return elapsed


async def _no_lookup(node: NodeId) -> LinkAddress | None:
    return None


async def via_stream(total: int, url: str) -> float:
    producer = aioredis.from_url(url)
    consumer = aioredis.from_url(url)
    key = "bench:relay"
    await producer.delete(key)
    chunk = bytes(CHUNK)
    taken = 0
    progress = asyncio.Event()

    async def consume() -> None:
        nonlocal taken
        last = "0-0"
        while taken < total:
            replies = await consumer.xread({key: last}, count=64, block=1000)
            for _, entries in replies:
                for entry_id, fields in entries:
                    taken += len(fields[b"d"])
                    last = entry_id
                await consumer.xtrim(key, minid=last)
            progress.set()

    start = time.perf_counter()
    reader = asyncio.ensure_future(consume())
    sent = 0
    while sent < total:
        pipe = producer.pipeline(transaction=False)
        for _ in range(16):
            pipe.xadd(key, {"d": chunk})
            sent += CHUNK
        await pipe.execute()
        # Bound what waits in Redis (256 chunks), as flow control between
        # nodes would.
        while sent - taken > 256 * CHUNK:
            progress.clear()
            await progress.wait()
    await reader
    elapsed = time.perf_counter() - start
    await producer.aclose()
    await consumer.aclose()
    return elapsed


async def via_pubsub(total: int, url: str) -> float:
    publisher = aioredis.from_url(url)
    subscriber = aioredis.from_url(url)
    pubsub = subscriber.pubsub()
    await pubsub.subscribe("bench:relay")
    await pubsub.get_message(timeout=1)  # the subscription's confirmation
    chunk = bytes(CHUNK)

    async def consume() -> None:
        got = 0
        while got < total:
            message = await pubsub.get_message(timeout=5)
            if message is None:
                raise RuntimeError(f"subscriber dropped or starved after {got} bytes")
            got += len(message["data"])

    start = time.perf_counter()
    reader = asyncio.ensure_future(consume())
    sent = 0
    while sent < total:
        pipe = publisher.pipeline(transaction=False)
        for _ in range(16):
            pipe.publish("bench:relay", chunk)
            sent += CHUNK
        await pipe.execute()
    await reader
    elapsed = time.perf_counter() - start
    await pubsub.aclose()
    await publisher.aclose()
    await subscriber.aclose()
    return elapsed


PATHS = {"node link": via_link, "Redis stream": via_stream, "Redis pub/sub": via_pubsub}


async def main_async(mib: int, repeats: int) -> int:
    total = mib * 1024 * 1024
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in PATHS}
    async with RedisServer.running() as server:
        probe = aioredis.from_url(server.url)
        for _ in range(repeats):
            for name, path in PATHS.items():
                cpu0 = await redis_cpu(probe)
                try:
                    secs = await path(total, server.url)
                    figures = {"MB/s": total / MB / secs}
                except RuntimeError as exc:
                    print(f"{name}: {exc}", flush=True)
                    figures = {"MB/s": float("nan")}
                figures["Redis CPU s"] = await redis_cpu(probe) - cpu0
                runs[name].append(figures)
                print(f"{name}: {figures}", flush=True)
        await probe.aclose()
    print(f"\n| {mib} MiB in 64 KiB chunks (median of {repeats}) | MB/s | Redis CPU s |")
    print("| --- | ---: | ---: |")
    for name, figures in runs.items():
        rate = statistics.median(f["MB/s"] for f in figures)
        cpu = statistics.median(f["Redis CPU s"] for f in figures)
        print(f"| {name} | {rate:,.0f} | {cpu:.2f} |")
    print("\nraw:", json.dumps(runs))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    return asyncio.run(main_async(args.mib, args.repeats))


if __name__ == "__main__":
    sys.exit(main())
