"""Cluster benchmarks, each side by side in one run.

    .venv/bin/python bench/cluster.py [--size 10000] [--repeats 1]
    .venv/bin/python bench/cluster.py --relay [--repeats 5]
    .venv/bin/python bench/cluster.py --workers [--repeats 5]
    .venv/bin/python bench/cluster.py --scale [--size 10000]

Formation: a swarm forming on two wsstar nodes sharing one Redis, beside the
same swarm on one node, alternating.  The load is the formation scenario's
(bench/scenarios.py): Ed25519 ids, the challenge on, two load processes, here
one per node; then a reconnect storm.  After forming, each node's /health
must count the whole swarm.

Scale (``--scale``): ``size`` peers held on one node, and split over two
nodes, for 30 s: the re-announcement rate each gets against what the
rounds promise, then a new peer joins on the first node and every held peer
notes when it hears of it (the discovery guarantees of PROTOCOL.md §6).

Workers (``--workers``): the relay and dial scenarios against one process
and against ``--workers 2`` on one port, alternating; server CPU is the
supervisor's and its workers', and the load generator's own CPU is shown.

Relay (``--relay``): on one cluster of two nodes, the relay and dial
scenarios with both ends on node one, and with the listeners on node two,
alternating: what crossing the node link costs.  Server CPU is both nodes'.

Each prints one table of medians, every run's figures under it.  Needs
redis-server (as the test suite does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys

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
from scenarios import (
    MIB,
    Ctx,
    Keys,
    Metrics,
    Options,
    dial_run,
    formation_run,
    relay_run,
    scale_run,
)

# The test suite's Redis runner: one way to start a real redis-server.
sys.path.insert(0, str(ROOT))
from tests.support.redis import RedisServer

#: Seconds after forming within which every node must count the whole swarm.
SEEN_WITHIN = 30.0


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
                    counts = [await asyncio.to_thread(s.peers) for s in servers]
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


def context(size: int, repeats: int) -> Ctx:
    raise_nofile()
    ensure_npm(log)
    configure_wsstar(False)
    ed = ensure_keys("ed25519", ED_POOL, log)
    rsa = ensure_keys("rsa", RSA_POOL, log)
    opts = Options(False, repeats, [], [size], 0.0, 0, 0, 0, 0, 0, ["wsstar-budget"])
    return Ctx(opts, Keys(ed, key_ids(ed), rsa, key_ids(rsa)), log)


def table(title: str, runs: dict[str, list[Metrics]]) -> None:
    """Medians of two layouts side by side, with the second's ratio to the first."""
    (first, a), (second, b) = runs.items()
    print(f"\n| {title} | {first} | {second} | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for figure in a[0]:
        x = statistics.median(r[figure] for r in a)
        y = statistics.median(r[figure] for r in b)
        ratio = f"{y / x:.2f}" if x else "-"
        print(f"| {figure} | {x:,.3g} | {y:,.3g} | {ratio} |")
    print("\nraw:", json.dumps(runs))


async def formation(size: int, repeats: int) -> int:
    ctx = context(size, repeats)
    runs: dict[str, list[Metrics]] = {"one node": [], "two nodes": []}
    for _ in range(repeats):
        for layout, count in (("one node", 1), ("two nodes", 2)):
            log(f"formation of {size:,} on {layout}")
            runs[layout].append(await one_run(ctx, size, count))
            log(f"  {layout}: {runs[layout][-1]}")
    table(f"figure ({size:,} peers, median of {repeats})", runs)
    return 0


async def relay(repeats: int) -> int:
    ctx = context(0, repeats)
    cases = {
        "1 stream of 16 MiB": dict(pairs=1, size=16 * MIB, chunk=64 * 1024),
        "16 streams of 1 MiB": dict(pairs=16, size=MIB, chunk=64 * 1024, procs=2),
    }
    async with RedisServer.running() as redis:
        nodes = [
            Server("wsstar-budget", more_args=["--redis-url", redis.url], tag=str(i))
            for i in range(2)
        ]
        for node in nodes:
            await node.start()
        try:
            for case, kwargs in cases.items():
                runs: dict[str, list[Metrics]] = {"same node": [], "across nodes": []}
                for _ in range(repeats):
                    for layout, at in (("same node", None), ("across nodes", nodes[1])):
                        m = await relay_run(
                            ctx, nodes[0], listener_at=at, others=(nodes[1],), **kwargs
                        )
                        runs[layout].append({k: m[k] for k in ("MB/s", "server CPU s")})
                        log(f"  {case}, {layout}: {runs[layout][-1]}")
                table(f"relay, {case} (median of {repeats})", runs)
            runs = {"same node": [], "across nodes": []}
            for _ in range(repeats):
                for layout, at in (("same node", None), ("across nodes", nodes[1])):
                    m = await dial_run(
                        ctx, nodes[0], total=4000, listener_at=at, others=(nodes[1],)
                    )
                    keep = (
                        "dials/s",
                        "p50 latency ms",
                        "p99 latency ms",
                        "failed dials",
                        "server CPU ms per dial",
                    )
                    runs[layout].append({k: m[k] for k in keep})
                    log(f"  dials, {layout}: {runs[layout][-1]}")
            table(f"4000 dials, 20 in flight (median of {repeats})", runs)
        finally:
            for node in nodes:
                await node.stop()
    return 0


async def workers(repeats: int) -> int:
    ctx = context(0, repeats)
    load = ("server CPU s", "load generator CPU s", "load generator busiest process, % of a core")
    async with RedisServer.running() as redis:
        layouts = {
            "one process": Server("wsstar-budget", tag="1"),
            "--workers 2": Server(
                "wsstar-budget", more_args=["--workers", "2", "--redis-url", redis.url], tag="w"
            ),
        }
        for server in layouts.values():
            await server.start()
        try:
            cases = {
                "16 streams of 1 MiB": dict(pairs=16, size=MIB, chunk=64 * 1024, procs=2),
                "2 streams of 5,000 x 1 KiB": dict(pairs=2, size=5000 * 1024, chunk=1024, procs=2),
            }
            for case, kwargs in cases.items():
                runs: dict[str, list[Metrics]] = {name: [] for name in layouts}
                for _ in range(repeats):
                    for name, server in layouts.items():
                        m = await relay_run(ctx, server, **kwargs)
                        runs[name].append({k: m[k] for k in ("MB/s", "events/s", *load)})
                        log(f"  {case}, {name}: {runs[name][-1]}")
                table(f"relay, {case} (median of {repeats})", runs)
            runs = {name: [] for name in layouts}
            for _ in range(repeats):
                for name, server in layouts.items():
                    m = await dial_run(ctx, server, total=4000)
                    keep = ("dials/s", "p99 latency ms", "failed dials", *load)
                    runs[name].append({k: m[k] for k in keep})
                    log(f"  dials, {name}: {runs[name][-1]}")
            table(f"4000 dials, 20 in flight (median of {repeats})", runs)
        finally:
            for server in layouts.values():
                await server.stop()
    return 0


async def scale(size: int, repeats: int) -> int:
    ctx = context(size, repeats)
    runs: dict[str, list[Metrics]] = {"one node": [], "two nodes": []}
    async with RedisServer.running() as redis:
        for _ in range(repeats):
            for layout, count in (("one node", 1), ("two nodes", 2)):
                args = ["--redis-url", redis.url] if count > 1 else []
                servers = [
                    Server("wsstar-budget", more_args=args, tag=f"s{i}") for i in range(count)
                ]
                for server in servers:
                    await server.start()
                try:
                    log(f"{size:,} peers held on {layout}")
                    m = await scale_run(
                        ctx, servers[0], size=size, hold=30.0, others=tuple(servers[1:])
                    )
                finally:
                    for server in servers:
                        await server.stop()
                runs[layout].append(m)
                log(f"  {layout}: {m}")
    table(f"figure ({size:,} peers held, median of {repeats})", runs)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--relay", action="store_true", help="relay and dials across nodes")
    parser.add_argument("--workers", action="store_true", help="--workers 2 against one process")
    parser.add_argument("--scale", action="store_true", help="a swarm held on one and two nodes")
    args = parser.parse_args()
    if args.scale:
        return asyncio.run(scale(args.size, args.repeats))
    if args.relay:
        return asyncio.run(relay(args.repeats))
    if args.workers:
        return asyncio.run(workers(args.repeats))
    return asyncio.run(formation(args.size, args.repeats))


if __name__ == "__main__":
    sys.exit(main())
