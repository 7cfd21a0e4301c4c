"""Cluster benchmark: a swarm forming on two wsstar nodes sharing one Redis,
beside the same swarm on one node, alternating in one run.

    .venv/bin/python bench/cluster.py [--size 10000] [--repeats 1]

The load is the formation scenario's (bench/scenarios.py): Ed25519 ids, the
challenge on, two load processes, here one per node; then a reconnect storm.
After forming, each node's /health must count the whole swarm.  Prints one
table of medians, every run's figures under it.  Needs redis-server (as the
test suite does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import urllib.request

from harness import (
    ROOT,
    Server,
    configure_wsstar,
    ensure_keys,
    ensure_npm,
    key_ids,
    raise_nofile,
)
from run import ED_POOL, RSA_POOL, log
from scenarios import Ctx, Keys, Metrics, Options, formation_run

# The test suite's Redis runner: one way to start a real redis-server.
sys.path.insert(0, str(ROOT))
from tests.support.redis import RedisServer

#: Seconds after forming within which every node must count the whole swarm.
SEEN_WITHIN = 30.0


def swarm_seen(server: Server) -> int:
    with urllib.request.urlopen(server.url + "/health", timeout=10) as resp:
        return int(json.load(resp)["peers"])


async def one_run(ctx: Ctx, size: int, nodes: int) -> Metrics:
    async with RedisServer.running() as redis:
        url = redis.url
        servers = [
            Server("wsstar-budget", more_args=["--redis-url", url] if nodes > 1 else [], tag=str(i))
            for i in range(nodes)
        ]
        for server in servers:
            await server.start()
        try:

            async def seen() -> Metrics:
                """How long after the last join ack every node counts the whole swarm."""
                loop = asyncio.get_running_loop()
                start = loop.time()
                least = 0
                while loop.time() - start < SEEN_WITHIN:
                    counts = [await asyncio.to_thread(swarm_seen, s) for s in servers]
                    least = min(counts)
                    if least >= size:
                        break
                    await asyncio.sleep(0.05)
                return {
                    "swarm seen by the node that sees least, formed": least,
                    "whole swarm on every node, s after formation": loop.time() - start,
                }

            return await formation_run(
                ctx, servers[0], size=size, others=tuple(servers[1:]), formed_check=seen
            )
        finally:
            for server in servers:
                await server.stop()


async def main_async(size: int, repeats: int) -> int:
    raise_nofile()
    ensure_npm(log)
    configure_wsstar(False)
    ed = ensure_keys("ed25519", ED_POOL, log)
    rsa = ensure_keys("rsa", RSA_POOL, log)
    opts = Options(False, repeats, [], [size], 0.0, 0, 0, 0, 0, 0, ["wsstar-budget"])
    ctx = Ctx(opts, Keys(ed, key_ids(ed), rsa, key_ids(rsa)), log)
    runs: dict[str, list[Metrics]] = {"one node": [], "two nodes": []}
    for _ in range(repeats):
        for layout, count in (("one node", 1), ("two nodes", 2)):
            log(f"formation of {size:,} on {layout}")
            runs[layout].append(await one_run(ctx, size, count))
            log(f"  {layout}: {runs[layout][-1]}")
    figures = list(runs["one node"][0])
    print(f"\n| figure ({size:,} peers, median of {repeats}) | one node | two nodes | two/one |")
    print("| --- | ---: | ---: | ---: |")
    for figure in figures:
        one = statistics.median(r[figure] for r in runs["one node"])
        two = statistics.median(r[figure] for r in runs["two nodes"])
        ratio = f"{two / one:.2f}" if one else "-"
        print(f"| {figure} | {one:,.3g} | {two:,.3g} | {ratio} |")
    print("\nraw:", json.dumps(runs))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    return asyncio.run(main_async(args.size, args.repeats))


if __name__ == "__main__":
    sys.exit(main())
