"""Leak check: wsstar's resident memory over thousands of connect / join /
dial / disconnect cycles, a third of them ending in a TCP reset before the
dial is answered and a third in a reset mid-stream.

    .venv/bin/python bench/leak.py [--cycles 6000] [--concurrency 8]

Prints the server's RSS when idle, after a warm-up, after every block of
cycles and at the end, and what ``/metrics`` says is left in its tables
(all zero when nothing leaked).  The cycles are the ones the leak test runs
(tests/support/cycles.py), so the test's table checks and these figures
describe the same traffic.  The reference server cannot run this load: it
never fails a dial whose listener is gone, so those cycles would hang.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import aiohttp
from harness import ROOT, Server, configure_wsstar, raise_nofile

sys.path.insert(0, str(ROOT))
from tests.support.cycles import cycle

TABLES = (
    "rendezvous_peers",
    "wsstar_connected_sockets",
    "wsstar_relay_streams",
    "wsstar_pending_dials",
    "wsstar_pending_challenges",
)


def rss(server: Server) -> float:
    return server.memory_mib().get("VmRSS", float("nan"))


async def tables(server: Server) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
        page = await resp.text()
    values = dict(line.split(" ", 1) for line in page.splitlines() if line.startswith(TABLES))
    return {name: float(values[name]) for name in TABLES}


async def run_cycles(port: int, start: int, count: int, concurrency: int) -> None:
    """``count`` cycles numbered from ``start``, ``concurrency`` at a time."""
    numbers = iter(range(start, start + count))

    async def lane() -> None:
        for i in numbers:
            await asyncio.wait_for(cycle(port, i), 60)

    await asyncio.gather(*(lane() for _ in range(concurrency)))


async def settle(server: Server, timeout: float = 30.0) -> dict[str, float]:
    """Wait until the server's tables are empty again (disconnects are
    processed asynchronously); return what they hold then."""
    deadline = time.monotonic() + timeout
    while True:
        left = await tables(server)
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.2)


async def main_async(cycles: int, concurrency: int, warmup: int, blocks: int) -> int:
    raise_nofile()
    flags = configure_wsstar(keep_limits=False)
    server = Server("wsstar", metrics=True)
    await server.start()
    try:
        await asyncio.sleep(1.0)
        idle = rss(server)
        print(f"server: python -m wsstar {' '.join(flags)}")
        print(f"RSS idle: {idle:.1f} MiB")
        await run_cycles(server.port, 0, warmup, concurrency)
        await settle(server)
        base = rss(server)
        print(f"RSS after {warmup} warm-up cycles: {base:.1f} MiB")
        done = 0
        per_block = cycles // blocks
        t0 = time.monotonic()
        for _ in range(blocks):
            await run_cycles(server.port, warmup + done, per_block, concurrency)
            done += per_block
            await settle(server)
            print(f"RSS after {done} more cycles: {rss(server):.1f} MiB")
        secs = time.monotonic() - t0
        left = await settle(server)
        end = rss(server)
        growth = end - base
        print(f"cycles: {done} in {secs:.1f} s ({done / secs:.0f}/s), {concurrency} at a time")
        print(f"RSS growth since warm-up: {growth:+.1f} MiB ({100 * growth / base:+.1f}%)")
        print(f"RSS growth since idle: {end - idle:+.1f} MiB")
        print(f"peak RSS: {server.memory_mib().get('VmHWM', float('nan')):.1f} MiB")
        print("left in tables: " + ", ".join(f"{k} {v:g}" for k, v in left.items()))
        return 0 if not any(left.values()) else 1
    finally:
        await server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=6000, help="measured cycles")
    parser.add_argument("--concurrency", type=int, default=8, help="cycles in flight")
    parser.add_argument("--warmup", type=int, default=600, help="cycles before the baseline")
    parser.add_argument("--blocks", type=int, default=6, help="RSS readings during the run")
    a = parser.parse_args()
    return asyncio.run(main_async(a.cycles, a.concurrency, a.warmup, a.blocks))


if __name__ == "__main__":
    sys.exit(main())
