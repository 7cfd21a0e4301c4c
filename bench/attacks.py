"""Memory attacks: wsstar's resident memory before, at its peak during and
after each attack that once exhausted it, with an honest pair echoing
through the server all along.

    .venv/bin/python bench/attacks.py [--attack NAME ...] [--scale 1.0]

Each attack runs against a fresh ``python -m wsstar`` on 127.0.0.1 at the
size it was reported at (``--scale`` shrinks or grows that); the traffic is
that of the live attack tests (tests/support/attacks.py), only larger.  The
"reported" column is what a default server of the time did under the same
attack, from the hardening report; the reference server is not run here
(its memory under these attacks is not what is being compared).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass

from harness import ROOT, raise_nofile

sys.path.insert(0, str(ROOT))
from tests.support.attacks import ATTACKS
from tests.support.subject import HonestPair, Subject


@dataclass(frozen=True)
class Case:
    attack: str
    size: int
    flags: tuple[str, ...]
    reported: str


CASES = (
    Case(
        "failed-posts",
        20_000,
        (),
        "20,000 header-only POSTs: RSS 55 -> 413 MB, never freed; "
        "1,000 with their body: +610 MB and +1,000 fds kept",
    ),
    Case(
        "unaccepted-relay",
        300,
        (),
        "300 self-dials never accepted: RSS 55 MB -> 2.4 GB in 17 s, no overflow counted",
    ),
    Case(
        "unread-replies",
        1000,
        (),
        "1,000,000 tiny requests unread: +268 MB; 40 POSTs of PINGs: +313 MB",
    ),
    Case(
        "stalled-receivers",
        10,
        ("--relay-stall-timeout", "10"),
        "about 20 MB held per stalled receiver (10 receivers: ~200 MB) while they ping",
    ),
)


async def attack_in_own_process(name: str, port: int, size: int) -> str:
    """The attack, from a process of its own: sharing this one's event loop,
    an attacker as busy as these would slow the honest pair's client down
    and make it look as if the server did."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--only",
        name,
        str(port),
        str(size),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the {name} attack failed (exit status {proc.returncode})")
    return out.decode().strip()


async def run(case: Case, scale: float) -> list[str]:
    attack = ATTACKS[case.attack]
    size = max(1, round(case.size * scale))
    async with Subject.running(*attack.flags, *case.flags) as server:
        async with HonestPair.running(server.port) as pair:
            before = await server.footprint()
            pair.latencies.clear()
            started = time.monotonic()
            what = await attack_in_own_process(case.attack, server.port, size)
            took = time.monotonic() - started
            peak = server.peak_mib()
            after = await server.settles_to(before, timeout=60)
            latencies = sorted(pair.latencies)
        stopped = await server.stop()
    p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")
    return [
        f"## {case.attack} (size {size})",
        "",
        f"- reported: {case.reported}",
        f"- now: {what} ({took:.1f} s)",
        f"- RSS before {before.rss_mib:.0f} MiB, peak {peak:.0f} MiB, "
        f"after {after.rss_mib:.0f} MiB; fds {before.fds} -> {after.fds}, "
        f"tasks {before.tasks} -> {after.tasks}",
        f"- honest pair: {len(latencies)} echoes, "
        f"p50 {1000 * statistics.median(latencies) if latencies else float('nan'):.1f} ms, "
        f"p99 {1000 * p99:.1f} ms, failures {pair.failures or 'none'}; "
        f"SIGTERM exit status {stopped}",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--attack", action="append", choices=[c.attack for c in CASES], help="default: all"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every size")
    # The attack alone, against a server already running: how this script
    # runs each attack in a process of its own.
    parser.add_argument("--only", nargs=3, metavar=("NAME", "PORT", "SIZE"), help=argparse.SUPPRESS)
    a = parser.parse_args()
    raise_nofile()
    if a.only:
        name, port, size = a.only
        print(asyncio.run(ATTACKS[name].run(int(port), int(size))))
        return 0
    chosen = [c for c in CASES if a.attack is None or c.attack in a.attack]
    for case in chosen:
        print("\n".join(asyncio.run(run(case, a.scale))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
