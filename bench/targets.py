"""The performance targets, checked against a run's medians.

Each target names a case (scenario and the start of its name), a figure and
a bound, either on wsstar's value or on its ratio to the reference measured
in the same case.  The table goes at the top of RESULTS.md, so a rerun says
by itself which targets hold; the reasons for a miss are in ANALYSIS.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


class Medians(Protocol):
    scenario: str
    name: str
    servers: tuple[str, ...]

    def median(self, fig: str, server: str) -> float: ...


Reader = Callable[[Medians, str], float]


def figure(name: str) -> Reader:
    return lambda res, server: res.median(name, server)


def rss_per_peer(res: Medians, server: str) -> float:
    return res.median("RSS at end MiB", server) / res.median("peers joined", server)


def rss_growth_share(before: str, after: str) -> Reader:
    def read(res: Medians, server: str) -> float:
        start = res.median(before, server)
        return (res.median(after, server) - start) / start

    return read


@dataclass(frozen=True)
class Target:
    text: str
    scenario: str
    case: str  # the case name starts with this
    read: Reader
    server: str
    bound: float
    at_most: bool  # True: measured <= bound; False: measured >= bound
    ratio: bool  # compare wsstar / reference rather than wsstar's value


TARGETS: tuple[Target, ...] = (
    Target("scale N = 1,000: server CPU in hold (default budget)", "scale", "N = 1000 ",
           figure("server CPU s in hold"), "wsstar-budget", 0.25, True, True),
    Target("scale N = 1,000: server CPU in hold (reference rate)", "scale", "N = 1000 ",
           figure("server CPU s in hold"), "wsstar", 0.25, True, True),
    Target("scale N = 10,000: sockets still connected, %", "scale", "N = 10000 ",
           figure("connected at end, % of joined"), "wsstar-budget", 100.0, False, False),
    Target("scale N = 10,000: peers joined", "scale", "N = 10000 ",
           figure("peers joined"), "wsstar-budget", 10000.0, False, False),
    Target("scale N = 10,000: server CPU in hold, % of one core", "scale", "N = 10000 ",
           figure("server CPU % of one core in hold"), "wsstar-budget", 100.0, True, False),
    Target("scale N = 10,000: new peer announced to everyone, p99 ms", "scale", "N = 10000 ",
           figure("probe announced p99 ms"), "wsstar-budget", 1000.0, True, False),
    Target("scale N = 10,000: new peer announced to, % of peers", "scale", "N = 10000 ",
           figure("probe announced to, % of peers"), "wsstar-budget", 100.0, False, False),
    Target("scale N = 1,000: RSS per joined peer (default budget)", "scale", "N = 1000 ",
           rss_per_peer, "wsstar-budget", 1.0, True, True),
    Target("scale N = 2,000: RSS per joined peer (default budget)", "scale", "N = 2000 ",
           rss_per_peer, "wsstar-budget", 1.0, True, True),
    Target("join rate, Ed25519", "join", "Ed25519", figure("joins/s"), "wsstar", 5.0, False, True),
    Target("join p99, Ed25519", "join", "Ed25519",
           figure("p99 latency ms"), "wsstar", 1.0, True, True),
    Target("join rate, RSA-2048", "join", "RSA-2048",
           figure("joins/s"), "wsstar", 1.0, False, True),
    Target("join p99, RSA-2048", "join", "RSA-2048",
           figure("p99 latency ms"), "wsstar", 1.0, True, True),
    Target("relay, one 16 MiB stream, MB/s", "relay", "1 stream",
           figure("MB/s"), "wsstar", 1.2, False, True),
    Target("relay, 16 parallel streams, MB/s", "relay", "16 parallel",
           figure("MB/s"), "wsstar", 1.0, False, True),
    Target("relay, 1 KiB chunks, events/s", "relay", "2 parallel",
           figure("events/s"), "wsstar", 1.0, False, True),
    Target("dial rate", "dial", "", figure("dials/s"), "wsstar", 1.0, False, True),
    Target("dial p99", "dial", "", figure("p99 latency ms"), "wsstar", 1.0, True, True),
    Target("RSS growth over the dials, share of the start", "dial", "",
           rss_growth_share("RSS before dials MiB", "RSS after dials MiB"),
           "wsstar", 0.10, True, False),
    Target("RSS growth over the churn, share of the start", "churn", "",
           rss_growth_share("RSS before MiB", "RSS after MiB"), "wsstar", 0.10, True, False),
    Target("swarm of 10,000 forms (challenge), s", "formation", "Swarm of 10000 ",
           figure("formation s"), "wsstar-budget", 20.0, True, False),
    Target("swarm of 10,000: reconnect storm fully rejoined, s", "formation", "Swarm of 10000 ",
           figure("storm: drop to all rejoined s"), "wsstar-budget", 30.0, True, False),
    Target("swarm of 10,000: connected at the end, %", "formation", "Swarm of 10000 ",
           figure("connected at end, % of peers"), "wsstar-budget", 100.0, False, False),
    Target("16 MiB written at once to a normal reader: intact of 5", "flow", "a sender",
           figure("intact transfers"), "wsstar", 5.0, False, False),
    Target("4 x 32 MiB to ~2 MB/s readers: intact of 4", "flow", "4 senders",
           figure("intact streams"), "wsstar", 4.0, False, False),
    Target("4 x 32 MiB to ~2 MB/s readers: server RSS rise, MiB", "flow", "4 senders",
           figure("server RSS rise MiB"), "wsstar", 96.0, True, False),
    Target("stalled receiver: its sender's stream cut after, s", "flow", "a receiver",
           figure("stream cut after s"), "wsstar", 35.0, True, False),
    Target("stalled receiver: server RSS rise, MiB", "flow", "a receiver",
           figure("server RSS rise MiB"), "wsstar", 96.0, True, False),
    Target("stalled receiver: other pair's failed dials", "flow", "a receiver",
           figure("other pair's failed dials"), "wsstar", 0.0, True, False),
)  # fmt: skip


def _fmt(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def target_table(results: Sequence[Medians]) -> list[str]:
    """Markdown lines: each target, what this run measured, and whether it holds."""
    lines = [
        "| target | bound | measured | holds |",
        "| --- | ---: | ---: | :---: |",
    ]
    for t in TARGETS:
        res = next(
            (r for r in results if r.scenario == t.scenario and r.name.startswith(t.case)), None
        )
        bound = ("≤ " if t.at_most else "≥ ") + _fmt(t.bound) + (" x ref" if t.ratio else "")
        if res is None or t.server not in res.servers:
            lines.append(f"| {t.text} | {bound} | not measured | |")
            continue
        value = t.read(res, t.server)
        if t.ratio:
            ref = t.read(res, "reference") if "reference" in res.servers else math.nan
            value = value / ref if ref else math.nan
        if math.isnan(value):
            lines.append(f"| {t.text} | {bound} | - | no |")
            continue
        ok = value <= t.bound if t.at_most else value >= t.bound
        shown = _fmt(value) + (" x" if t.ratio else "")
        lines.append(f"| {t.text} ({t.server}) | {bound} | {shown} | {'yes' if ok else '**no**'} |")
    return lines
