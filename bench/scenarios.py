"""The benchmark scenarios. Each `*_run` measures ONE server once and returns
{figure: value}; `SCENARIOS` lists the cases run.py repeats for both servers.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import Fleet, Server, address, pool_address

MB = 1e6
MIB = 1024 * 1024
Metrics = dict[str, float]


@dataclass
class Options:
    quick: bool
    repeats: int
    sizes: list[int]
    formation_sizes: list[int]
    hold: float
    dials: int
    joins_ed25519: int
    joins_rsa: int
    churn: int
    relay_events: int
    servers: list[str]


@dataclass
class Keys:
    ed_path: Path
    ed_ids: list[str]
    rsa_path: Path
    rsa_ids: list[str]


@dataclass
class Ctx:
    opts: Options
    keys: Keys
    log: Callable[[str], None]
    notes: list[str] = field(default_factory=list)

    def note_errors(self, results: list[dict[str, Any]]) -> None:
        """Keep the load generator's error messages for the report."""
        text = _first_errors(results)
        if text:
            self.notes.append(text)


@dataclass
class Case:
    """One measured case: a name and how to run it on one server."""

    scenario: str
    name: str
    run: Callable[[Ctx, Server], Awaitable[Metrics]]
    repeats: int
    servers: tuple[str, ...] = ("reference", "wsstar")
    notes: list[str] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return math.nan
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


class Meter:
    """CPU seconds of the server and of the load generator, and wall time."""

    def __init__(self, server: Server, fleet: Fleet, others: tuple[Server, ...] = ()) -> None:
        """CPU of ``server`` and of ``others`` (more nodes of one cluster), summed."""
        self.servers = (server, *others)
        self.fleet = fleet
        self.t0 = self.s0 = 0.0
        self.wall = self.server_cpu = self.load_cpu = self.busiest_pct = math.nan
        self.per_worker: list[float] = []

    def start(self) -> Meter:
        self.t0 = time.monotonic()
        self.s0 = sum(s.cpu() for s in self.servers)
        self.per_worker = [w.cpu() for w in self.fleet.workers]
        return self

    def stop(self) -> Meter:
        self.wall = time.monotonic() - self.t0
        self.server_cpu = sum(s.cpu() for s in self.servers) - self.s0
        used = [w.cpu() - c for w, c in zip(self.fleet.workers, self.per_worker, strict=True)]
        self.load_cpu = sum(used)
        self.busiest_pct = 100 * max(used) / self.wall if used and self.wall > 0 else math.nan
        return self


def base_config(server: Server, keys: Path, role: str, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "role": role,
        "url": server.url,
        "keys": str(keys),
        "eio": 3,
        "timeoutMs": 20000,
        "runTimeoutMs": 120000,
        "lifetimeMs": 900000,
    }
    cfg.update(extra)
    return cfg


async def until_peers(server: Server, count: int, timeout: float = 30.0) -> None:
    """Until ``server`` counts ``count`` peers: in a cluster, a node hears of
    another's joins a moment after their acks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await asyncio.to_thread(server.peers) < count:
        if loop.time() > deadline:
            raise RuntimeError(f"{server.name} never counted {count} peers")
        await asyncio.sleep(0.05)


def _check_alive(server: Server) -> None:
    if not server.alive():
        raise RuntimeError(f"{server.name} server died during the run")


def _count_errors(results: list[dict[str, Any]]) -> float:
    return float(sum(sum(r.get("errors", {}).values()) for r in results))


def _first_errors(results: list[dict[str, Any]]) -> str:
    seen: dict[str, int] = {}
    for r in results:
        for k, v in r.get("errors", {}).items():
            seen[k] = seen.get(k, 0) + int(v)
    return "; ".join(f"{k} x{v}" for k, v in list(seen.items())[:3])


# --------------------------------------------------------------- relay


def _relay_configs(
    ctx: Ctx,
    server: Server,
    peers: range,
    size: int,
    *,
    chunk: int = 64 * 1024,
    eio: int = 3,
    listener: dict[str, Any] | None = None,
    stream: dict[str, Any] | None = None,
    dialer: dict[str, Any] | None = None,
    listener_at: Server | None = None,
) -> list[dict[str, Any]]:
    """A listener process and a dialer process for the pairs numbered
    ``peers``, each dialer sending one stream of ``size`` bytes to its own
    listener; with extra settings for listeners, streams and the dialer
    process.  The listeners connect to ``listener_at`` (another node of the
    same cluster) when given."""
    keys = ctx.keys
    listeners = [{"key": i, "port": 101 + i, **(listener or {})} for i in peers]
    dialers = [
        {
            "key": i,
            "port": 201 + i,
            "streams": [
                {
                    "id": f"r{i}",
                    "to": address(keys.ed_ids[i], 101 + i),
                    "size": size,
                    "chunk": chunk,
                    **(stream or {}),
                }
            ],
        }
        for i in peers
    ]
    return [
        base_config(
            listener_at or server,
            keys.ed_path,
            "relay-listener",
            eio=eio,
            listeners=listeners,
            expectStreams=len(listeners),
        ),
        base_config(
            server, keys.ed_path, "relay-dialer", eio=eio, dialers=dialers, **(dialer or {})
        ),
    ]


async def relay_run(
    ctx: Ctx,
    server: Server,
    *,
    pairs: int,
    size: int,
    chunk: int,
    procs: int = 1,
    eio: int = 3,
    listener_at: Server | None = None,
    others: tuple[Server, ...] = (),
) -> Metrics:
    """`pairs` dialer peers each send one stream of `size` bytes to their own
    listener peer through the server; time from go to the last byte and end
    arriving at the listeners. Dialers are spread over `procs` processes and
    listeners over `procs` others.  In a cluster, the listeners are on
    ``listener_at`` and CPU is counted on the server and ``others``."""
    configs = [
        config
        for p in range(procs)
        for config in _relay_configs(
            ctx,
            server,
            range(p, pairs, procs),
            size,
            chunk=chunk,
            eio=eio,
            listener_at=listener_at,
        )
    ]
    async with Fleet(configs) as fleet:
        await fleet.all("ready", 60)
        if listener_at is not None:
            await until_peers(server, 2 * pairs)
        meter = Meter(server, fleet, others).start()
        await fleet.broadcast({"cmd": "go"})
        results = await fleet.all("result", 180)
        meter.stop()
    _check_alive(server)
    listener_res = results[0::2]
    dialer_res = results[1::2]
    errors = [e for r in dialer_res for e in r["errors"]]
    if errors:
        raise RuntimeError(f"relay dial failed: {errors[:3]}")
    streams = [s for r in listener_res for s in r["streams"]]
    got = sum(int(s["bytes"]) for s in streams)
    events = sum(int(s["events"]) for s in streams)
    if len(streams) != pairs or got != pairs * size:
        raise RuntimeError(f"relay incomplete: {len(streams)}/{pairs} streams, {got} bytes")
    t_go = min(float(r["tGo"]) for r in dialer_res)
    secs = (max(float(s["tEnd"]) for s in streams) - t_go) / 1000
    return {
        "MB/s": got / MB / secs,
        "events/s": events / secs,
        "seconds": secs,
        "server CPU s": meter.server_cpu,
        "load generator CPU s": meter.load_cpu,
        "load generator busiest process, % of a core": meter.busiest_pct,
    }


def relay_cases(opts: Options) -> list[Case]:
    events = opts.relay_events

    load = ("server CPU s", "load generator CPU s", "load generator busiest process, % of a core")

    async def single(ctx: Ctx, server: Server) -> Metrics:
        m = await relay_run(ctx, server, pairs=1, size=16 * MIB, chunk=64 * 1024)
        return _pick(m, "MB/s", *load)

    async def parallel(ctx: Ctx, server: Server) -> Metrics:
        m = await relay_run(ctx, server, pairs=16, size=MIB, chunk=64 * 1024, procs=2)
        return _pick(m, "MB/s", *load)

    async def small(ctx: Ctx, server: Server) -> Metrics:
        m = await relay_run(ctx, server, pairs=2, size=events * 512, chunk=1024, procs=2)
        return _pick(m, "events/s", "MB/s", *load)

    # these runs last a fraction of a second: more of them
    r = opts.repeats if opts.quick else max(5, opts.repeats)
    return [
        Case("relay", "1 stream of 16 MiB, 64 KiB chunks", single, r),
        Case("relay", "16 parallel streams of 1 MiB, 64 KiB chunks", parallel, r),
        Case("relay", f"2 parallel streams of {events // 2} x 1 KiB chunks", small, r),
    ]


def _pick(m: Metrics, *names: str) -> Metrics:
    return {k: m[k] for k in names}


# --------------------------------------------------------------- dials


async def dial_run(
    ctx: Ctx,
    server: Server,
    *,
    total: int,
    eio: int = 3,
    listener_at: Server | None = None,
    others: tuple[Server, ...] = (),
) -> Metrics:
    """Two dialer processes, one socket each with 10 dials in flight (20 in
    all), to one listener peer that echoes 1 byte; `total` dials.  In a
    cluster, the listener is on ``listener_at`` and CPU is counted on the
    server and ``others``."""
    keys = ctx.keys
    procs = 2
    inflight = 10
    listener_addr = address(keys.ed_ids[0], 301)
    listener = base_config(
        listener_at or server,
        keys.ed_path,
        "dial-listener",
        eio=eio,
        listeners=[{"key": 0, "port": 301}],
        runTimeoutMs=600000,
    )
    dialers = [
        base_config(
            server,
            keys.ed_path,
            "dial-dialer",
            eio=eio,
            dialers=[{"key": 1 + p, "port": 401 + p, "to": listener_addr}],
            inflight=inflight,
            count=total // procs,
            tag=f"d{p}",
            runTimeoutMs=600000,
        )
        for p in range(procs)
    ]
    async with Fleet([listener, *dialers]) as fleet:
        await fleet.all("ready", 60)
        if listener_at is not None:
            await until_peers(server, 1 + procs)
        await asyncio.sleep(0.5)
        rss_start = server.memory_mib().get("VmRSS", math.nan)
        meter = Meter(server, fleet, others).start()
        await fleet.broadcast({"cmd": "go"})
        results = [await w.recv("result", 660) for w in fleet.workers[1:]]
        meter.stop()
        await fleet.workers[0].send({"cmd": "stop"})
        await fleet.workers[0].recv("result", 30)
    _check_alive(server)
    await asyncio.sleep(1.0)
    mem = server.memory_mib()
    lat = [float(x) for r in results for x in r["latencies"]]
    secs = (max(float(r["tEnd"]) for r in results) - min(float(r["tGo"]) for r in results)) / 1000
    failed = _count_errors(results)
    ctx.note_errors(results)
    if not lat:
        raise RuntimeError(f"no dial completed: {_first_errors(results)}")
    return {
        "dials/s": len(lat) / secs,
        "p50 latency ms": pct(lat, 50),
        "p99 latency ms": pct(lat, 99),
        "failed dials": failed,
        "server CPU ms per dial": meter.server_cpu * 1000 / max(1, len(lat)),
        "server CPU s": meter.server_cpu,
        "load generator CPU s": meter.load_cpu,
        "load generator busiest process, % of a core": meter.busiest_pct,
        "RSS before dials MiB": rss_start,
        "RSS after dials MiB": mem.get("VmRSS", math.nan),
        "RSS growth MiB": mem.get("VmRSS", math.nan) - rss_start,
    }


def dial_cases(opts: Options) -> list[Case]:
    total = opts.dials

    async def run(ctx: Ctx, server: Server) -> Metrics:
        return await dial_run(ctx, server, total=total)

    return [Case("dial", f"{total} dials, 20 in flight, 1-byte echo", run, opts.repeats)]


# --------------------------------------------------------------- joins


async def join_run(ctx: Ctx, server: Server, *, kind: str, total: int) -> Metrics:
    """Two processes x 10 sockets: join (challenge + signed answer), leave,
    join again with the next identity; `total` joins."""
    path = ctx.keys.ed_path if kind == "ed25519" else ctx.keys.rsa_path
    procs = 2
    configs = [
        base_config(
            server,
            path,
            "join",
            sockets=10,
            count=total // procs,
            offset=p,
            stride=procs,
            runTimeoutMs=120000,
        )
        for p in range(procs)
    ]
    async with Fleet(configs) as fleet:
        await fleet.all("ready", 60)
        meter = Meter(server, fleet).start()
        await fleet.broadcast({"cmd": "go"})
        results = await fleet.all("result", 200)
        meter.stop()
    _check_alive(server)
    lat = [float(x) for r in results for x in r["latencies"]]
    ctx.note_errors(results)
    secs = (max(float(r["tEnd"]) for r in results) - min(float(r["tGo"]) for r in results)) / 1000
    if not lat:
        raise RuntimeError(f"no join completed: {_first_errors(results)}")
    return {
        "joins/s": len(lat) / secs,
        "p50 latency ms": pct(lat, 50),
        "p99 latency ms": pct(lat, 99),
        "failed joins": _count_errors(results),
        "server CPU ms per join": meter.server_cpu * 1000 / len(lat),
        "load generator CPU s": meter.load_cpu,
        "load generator busiest process, % of a core": meter.busiest_pct,
    }


def join_cases(opts: Options) -> list[Case]:
    async def ed(ctx: Ctx, server: Server) -> Metrics:
        return await join_run(ctx, server, kind="ed25519", total=opts.joins_ed25519)

    async def rsa(ctx: Ctx, server: Server) -> Metrics:
        return await join_run(ctx, server, kind="rsa", total=opts.joins_rsa)

    r = opts.repeats
    return [
        Case("join", f"Ed25519 ids, {opts.joins_ed25519} joins, 20 in flight", ed, r),
        Case("join", f"RSA-2048 ids, {opts.joins_rsa} joins, 20 in flight", rsa, r),
    ]


# --------------------------------------------------------------- scale


async def scale_run(
    ctx: Ctx, server: Server, *, size: int, hold: float, others: tuple[Server, ...] = ()
) -> Metrics:
    """`size` joined peers held for `hold` seconds, then one more peer joins
    and every socket notes when it is told about it.  With ``others`` (nodes
    of one cluster) the load processes take turns among the nodes, the new
    peer joins on the first, CPU is the nodes' sum and memory the largest
    node's."""
    ids = ctx.keys.rsa_ids
    nodes = (server, *others)
    procs = 2
    join_timeout = 60.0 + size * 0.12
    configs = [
        base_config(
            nodes[p % len(nodes)],
            ctx.keys.rsa_path,
            "scale-holder",
            count=size // procs + (1 if p < size % procs else 0),
            offset=p,
            stride=procs,
            concurrency=16,
            joinTimeoutMs=int(join_timeout * 1000),
            runTimeoutMs=int((hold + 300) * 1000),
            lifetimeMs=int((join_timeout + hold + 900) * 1000),
            timeoutMs=30000,
        )
        for p in range(procs)
    ]
    out: Metrics = {}
    async with Fleet(configs) as fleet:
        t0 = time.monotonic()
        s0 = sum(n.cpu() for n in nodes)
        ready = await fleet.all("ready", join_timeout + 60)
        join_secs = time.monotonic() - t0
        joined = sum(int(r["joined"]) for r in ready)
        ctx.note_errors(ready)
        out["peers joined"] = joined
        out["join phase s"] = join_secs
        out["join phase server CPU s"] = sum(n.cpu() for n in nodes) - s0
        for node in nodes:
            _check_alive(node)
        # hold
        meter = Meter(server, fleet, others).start()
        await fleet.broadcast({"cmd": "mark"})
        marks = await fleet.all("marked", 30)
        await asyncio.sleep(hold)
        reports = await _ask_all(fleet, {"cmd": "report"}, "report", 60)
        meter.stop()
        window = statistics.fmean(
            (float(r["t"]) - float(m["t"])) / 1000 for r, m in zip(reports, marks, strict=True)
        )
        received = sum(int(r["received"]) for r in reports)
        out["hold s"] = window
        out["server CPU s in hold"] = meter.server_cpu
        out["server CPU % of one core in hold"] = 100 * meter.server_cpu / meter.wall
        out["load generator CPU s in hold"] = meter.load_cpu
        out["load generator busiest process, % of a core"] = meter.busiest_pct
        out["ws-peer delivered/s"] = received / window
        budget = server.announce_budget
        per_socket = joined - 1 if budget is None else min(joined - 1, budget)
        expected = joined * per_socket / 10.0
        out["ws-peer delivered, % of the rate asked for"] = (
            100 * received / window / max(1.0, expected)
        )
        # probe: a newly joined peer, announced to everyone
        probe_figures = (
            "probe join ack ms",
            "probe announced p50 ms",
            "probe announced p99 ms",
            "probe announced to, % of peers",
        )
        try:
            out.update(await _probe(fleet, pool_address(ids, size), size))
        except Exception as exc:
            ctx.notes.append(f"probe: {type(exc).__name__}: {exc}")
            for fig in probe_figures:
                out.setdefault(fig, math.nan)
        final = await _ask_all(fleet, {"cmd": "report"}, "report", 60)
        conn = sum(int(r["connected"]) for r in final)
        out["connected at end, % of joined"] = (
            100 * conn / max(1, sum(int(r["peers"]) for r in final))
        )
        mems = [n.memory_mib() for n in nodes]
        out["RSS at end MiB"] = max(m.get("VmRSS", math.nan) for m in mems)
        out["peak RSS MiB"] = max(m.get("VmHWM", math.nan) for m in mems)
    for node in nodes:
        _check_alive(node)
    return out


async def _probe(fleet: Fleet, addr: str, n: int) -> Metrics:
    """One more peer joins; every held socket notes when it hears of it."""
    await _ask_all(fleet, {"cmd": "watch", "addr": addr}, "watching", 30)
    probed = await fleet.workers[0].ask({"cmd": "probe", "n": n}, "probed", 300)
    if "error" in probed:
        raise RuntimeError(f"probe join failed: {probed['error']}")
    deadline = time.monotonic() + 30.0
    while True:
        watched = await _ask_all(fleet, {"cmd": "watched"}, "watched", 60)
        got = sum(len(w["times"]) for w in watched)
        connected = sum(int(w["connected"]) for w in watched)
        if got >= connected - 1 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    t_sig = float(probed["tSig"])
    lat = [float(t) - t_sig for w in watched for t in w["times"]]
    receivers = max(1, connected - 1)  # the probe is not told about itself
    return {
        "probe join ack ms": float(probed["tAck"]) - t_sig,
        "probe announced p50 ms": pct(lat, 50),
        "probe announced p99 ms": pct(lat, 99),
        "probe announced to, % of peers": 100 * len(lat) / receivers,
    }


async def _ask_all(
    fleet: Fleet, cmd: dict[str, Any], reply: str, timeout: float
) -> list[dict[str, Any]]:
    await fleet.broadcast(cmd)
    return await fleet.all(reply, timeout)


#: Above this many peers only wsstar with its announcement budget is run: the
#: reference joins fewer than 1,000 peers on this kind of machine whatever N
#: is asked for, and N^2 re-announcements per interval (the reference's rate)
#: exceed what any single process can send.
LIKE_FOR_LIKE_MAX = 2000


def scale_cases(opts: Options) -> list[Case]:
    cases = []
    for size in opts.sizes:

        async def run(ctx: Ctx, server: Server, size: int = size) -> Metrics:
            return await scale_run(ctx, server, size=size, hold=opts.hold)

        servers = (
            ("reference", "wsstar", "wsstar-budget")
            if size <= LIKE_FOR_LIKE_MAX
            else ("wsstar-budget",)
        )
        name = f"N = {size} joined peers (RSA-2048 ids), held {opts.hold:.0f} s"
        cases.append(Case("scale", name, run, 1, servers))
    return cases


# --------------------------------------------------------------- formation


async def formation_run(
    ctx: Ctx,
    server: Server,
    *,
    size: int,
    others: tuple[Server, ...] = (),
    formed_check: Callable[[], Awaitable[Metrics]] | None = None,
) -> Metrics:
    """`size` peers join as fast as they can (the challenge on, Ed25519 ids);
    then every socket is dropped at once and each comes back at a random
    moment within five seconds, as after a server restart.  With ``others``
    (nodes of one cluster), the load processes take turns among the nodes,
    and CPU is the nodes' sum, memory the largest node's.  ``formed_check``
    adds figures read once the swarm has formed, before the storm."""
    nodes = (server, *others)
    procs = 2
    spread = 5.0
    deadline = 120.0 + size * 0.05
    configs = [
        base_config(
            nodes[p % len(nodes)],
            ctx.keys.ed_path,
            "formation",
            count=size // procs + (1 if p < size % procs else 0),
            offset=p,
            stride=procs,
            concurrency=256,
            spreadMs=int(spread * 1000),
            timeoutMs=30000,
            runTimeoutMs=int(deadline * 1000),
            lifetimeMs=int(4 * deadline * 1000),
        )
        for p in range(procs)
    ]
    out: Metrics = {}
    async with Fleet(configs) as fleet:
        await fleet.all("ready", 60)
        rss0 = max(n.memory_mib().get("VmRSS", math.nan) for n in nodes)

        def cpu() -> float:
            return sum(n.cpu() for n in nodes)

        s0, l0 = cpu(), fleet.cpu()
        await fleet.broadcast({"cmd": "go"})
        formed = await fleet.all("formed", deadline)
        ctx.note_errors(formed)
        out["joined"] = sum(int(r["joined"]) for r in formed)
        out["formation s"] = _span(formed)
        out["formation server CPU s"] = cpu() - s0
        out["formation load generator CPU s"] = fleet.cpu() - l0
        out["ws-peer received per peer, formation"] = sum(int(r["received"]) for r in formed) / max(
            1, out["joined"]
        )
        for node in nodes:
            _check_alive(node)
        if formed_check is not None:
            out.update(await formed_check())
        s0, l0 = cpu(), fleet.cpu()
        await fleet.broadcast({"cmd": "storm"})
        rejoined = await fleet.all("rejoined", deadline)
        ctx.note_errors(rejoined)
        out["rejoined after the storm"] = sum(int(r["joined"]) for r in rejoined)
        out["storm: drop to all rejoined s"] = _span(rejoined)
        out["storm server CPU s"] = cpu() - s0
        out["storm load generator CPU s"] = fleet.cpu() - l0
        reports = await _ask_all(fleet, {"cmd": "report"}, "report", 60)
        out["connected at end, % of peers"] = (
            100 * sum(int(r["connected"]) for r in reports) / max(1, size)
        )
        mems = [n.memory_mib() for n in nodes]
        out["RSS before MiB"] = rss0
        out["peak RSS MiB"] = max(m.get("VmHWM", math.nan) for m in mems)
        out["RSS at end MiB"] = max(m.get("VmRSS", math.nan) for m in mems)
    for node in nodes:
        _check_alive(node)
    return out


def _span(replies: list[dict[str, Any]]) -> float:
    """Seconds from the first process's start to the last one's end."""
    return (max(float(r["t1"]) for r in replies) - min(float(r["t0"]) for r in replies)) / 1000


def formation_cases(opts: Options) -> list[Case]:
    cases = []
    for size in opts.formation_sizes:

        async def run(ctx: Ctx, server: Server, size: int = size) -> Metrics:
            return await formation_run(ctx, server, size=size)

        servers = (
            ("reference", "wsstar-budget") if size <= LIKE_FOR_LIKE_MAX else ("wsstar-budget",)
        )
        name = f"Swarm of {size} forming (Ed25519 ids, challenge), then a reconnect storm"
        cases.append(Case("formation", name, run, 1, servers))
    return cases


# --------------------------------------------------------------- churn


async def churn_run(ctx: Ctx, server: Server, *, total: int) -> Metrics:
    """Two processes x 10 loops of: new socket, join (RSA-2048 id), disconnect."""
    procs = 2
    await asyncio.sleep(1.0)
    before = server.memory_mib().get("VmRSS", math.nan)
    configs = [
        base_config(
            server,
            ctx.keys.rsa_path,
            "churn",
            concurrency=10,
            count=total // procs,
            offset=p,
            stride=procs,
            runTimeoutMs=300000,
        )
        for p in range(procs)
    ]
    async with Fleet(configs) as fleet:
        await fleet.all("ready", 60)
        meter = Meter(server, fleet).start()
        await fleet.broadcast({"cmd": "go"})
        results = await fleet.all("result", 330)
        meter.stop()
    await asyncio.sleep(3.0)
    _check_alive(server)
    mem = server.memory_mib()
    lat = [float(x) for r in results for x in r["latencies"]]
    ctx.note_errors(results)
    secs = (max(float(r["tEnd"]) for r in results) - min(float(r["tGo"]) for r in results)) / 1000
    if not lat:
        raise RuntimeError(f"no cycle completed: {_first_errors(results)}")
    after = mem.get("VmRSS", math.nan)
    return {
        "cycles/s": len(lat) / secs,
        "p50 cycle ms": pct(lat, 50),
        "p99 cycle ms": pct(lat, 99),
        "failed cycles": _count_errors(results),
        "server CPU ms per cycle": meter.server_cpu * 1000 / len(lat),
        "load generator CPU s": meter.load_cpu,
        "load generator busiest process, % of a core": meter.busiest_pct,
        "RSS before MiB": before,
        "RSS after MiB": after,
        "RSS growth MiB": after - before,
        "peak RSS MiB": mem.get("VmHWM", math.nan),
    }


def churn_cases(opts: Options) -> list[Case]:
    async def run(ctx: Ctx, server: Server) -> Metrics:
        return await churn_run(ctx, server, total=opts.churn)

    return [Case("churn", f"{opts.churn} connect/join/disconnect cycles (RSA-2048 ids)", run, 1)]


# --------------------------------------------------------------- Engine.IO v4


def eio4_cases(opts: Options) -> list[Case]:
    """The same relay and dial loads with socket.io-client 4 (Engine.IO v4).
    The reference (socket.io 2) cannot serve these clients: wsstar only."""
    total = max(2, opts.dials // 4)

    async def dials(ctx: Ctx, server: Server) -> Metrics:
        m = await dial_run(ctx, server, total=total, eio=4)
        return _pick(m, "dials/s", "p50 latency ms", "p99 latency ms", "failed dials")

    async def single(ctx: Ctx, server: Server) -> Metrics:
        m = await relay_run(ctx, server, pairs=1, size=16 * MIB, chunk=64 * 1024, eio=4)
        return _pick(m, "MB/s", "server CPU s", "load generator CPU s")

    async def small(ctx: Ctx, server: Server) -> Metrics:
        n = opts.relay_events
        m = await relay_run(ctx, server, pairs=2, size=n * 512, chunk=1024, procs=2, eio=4)
        return _pick(m, "events/s", "server CPU s", "load generator CPU s")

    only = ("wsstar",)
    r = opts.repeats
    return [
        Case("eio4", "EIO4: 1 stream of 16 MiB, 64 KiB chunks", single, r, only),
        Case(
            "eio4",
            f"EIO4: 2 parallel streams of {opts.relay_events // 2} x 1 KiB chunks",
            small,
            r,
            only,
        ),
        Case("eio4", f"EIO4: {total} dials, 20 in flight", dials, r, only),
    ]


# --------------------------------------------------------------- flow control


class RssWatch:
    """The server's VmRSS sampled every 50 ms: how far it rose above where it
    started (VmHWM would include the set-up before the measurement)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start = server.memory_mib().get("VmRSS", math.nan)
        self.peak = self.start
        self._task = asyncio.ensure_future(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.server.memory_mib().get("VmRSS", math.nan))
            await asyncio.sleep(0.05)

    def stop(self) -> float:
        """The rise, MiB."""
        self._task.cancel()
        return self.peak - self.start


async def blast_run(ctx: Ctx, server: Server, *, transfers: int) -> Metrics:
    """``transfers`` times, a sender writes 16 MiB at once (as fast as its
    socket takes it) to a reader that reads at full speed: how many arrive
    intact."""
    intact = 0
    rates = []
    for _ in range(transfers):
        configs = _relay_configs(ctx, server, range(1), 16 * MIB)
        async with Fleet(configs) as fleet:
            await fleet.all("ready", 60)
            await fleet.broadcast({"cmd": "go"})
            listener, dialer = await fleet.all("result", 180)
        streams = listener["streams"]
        if not dialer["errors"] and streams and streams[0]["bytes"] == 16 * MIB:
            intact += streams[0]["end"] is True
            rates.append(16 * MIB / MB / ((streams[0]["tEnd"] - dialer["tGo"]) / 1000))
    _check_alive(server)
    return {
        "intact transfers": float(intact),
        "MB/s": statistics.median(rates) if rates else math.nan,
    }


async def slow_readers_run(
    ctx: Ctx, server: Server, *, pairs: int, size: int, rate: float
) -> Metrics:
    """``pairs`` senders each write ``size`` bytes at once to receivers that
    read about ``rate`` bytes a second: bytes intact, and how far the server's
    memory rose meanwhile."""
    configs = _relay_configs(ctx, server, range(pairs), size, listener={"readRate": rate})
    async with Fleet(configs) as fleet:
        await fleet.all("ready", 60)
        watch = RssWatch(server)
        meter = Meter(server, fleet).start()
        await fleet.broadcast({"cmd": "go"})
        listener, dialer = await fleet.all("result", 300)
        meter.stop()
        rise = watch.stop()
    _check_alive(server)
    streams = listener["streams"]
    intact = sum(1 for st in streams if st["bytes"] == size and st["end"] is True)
    secs = (max(float(st["tEnd"]) for st in streams) - float(dialer["tGo"])) / 1000
    return {
        "intact streams": float(intact),
        "MB/s, all receivers": sum(int(st["bytes"]) for st in streams) / MB / secs,
        "server RSS rise MiB": rise,
        "server CPU s": meter.server_cpu,
    }


async def stalled_run(ctx: Ctx, server: Server, *, size: int, wait: float) -> Metrics:
    """A receiver stops reading after its first chunk while its sender writes
    ``size`` bytes at once; meanwhile another pair dials and echoes without
    pause.  When the sender's stream is cut (if within ``wait`` seconds), how
    far the server's memory rose, and whether the other pair's dials failed."""
    keys = ctx.keys
    stalled = _relay_configs(
        ctx,
        server,
        range(1),
        size,
        listener={"stall": True},
        stream={"watchCut": True},
        dialer={"waitCutMs": wait * 1000},
    )
    listener_addr = address(keys.ed_ids[10], 310)
    others = [
        base_config(
            server,
            keys.ed_path,
            "dial-listener",
            listeners=[{"key": 10, "port": 310}],
            runTimeoutMs=600000,
        ),
        base_config(
            server,
            keys.ed_path,
            "dial-dialer",
            dialers=[{"key": 11, "port": 311, "to": listener_addr}],
            inflight=2,
            count=10**9,
            tag="o",
            runTimeoutMs=wait * 1000,
        ),
    ]
    async with Fleet([*stalled, *others]) as fleet:
        await fleet.all("ready", 60)
        watch = RssWatch(server)
        await fleet.broadcast({"cmd": "go"})
        sender = await fleet.workers[1].recv("result", wait + 60)
        dials = await fleet.workers[3].recv("result", wait + 60)
        rise = watch.stop()
        await fleet.workers[2].send({"cmd": "stop"})
    _check_alive(server)
    cuts = sender["cuts"]
    return {
        "stream cut after s": (cuts[0]["t"] - sender["tGo"]) / 1000 if cuts else math.nan,
        "server RSS rise MiB": rise,
        "other pair's dials": float(len(dials["latencies"])),
        "other pair's failed dials": _count_errors([dials]),
        "other pair's dial p99 ms": pct([float(x) for x in dials["latencies"]], 99),
    }


def flow_cases(opts: Options) -> list[Case]:
    async def blast(ctx: Ctx, server: Server) -> Metrics:
        return await blast_run(ctx, server, transfers=5)

    async def slow(ctx: Ctx, server: Server) -> Metrics:
        return await slow_readers_run(ctx, server, pairs=4, size=32 * MIB, rate=2e6)

    async def stall(ctx: Ctx, server: Server) -> Metrics:
        return await stalled_run(ctx, server, size=32 * MIB, wait=45.0)

    return [
        Case("flow", "a sender writing 16 MiB at once to a normal reader, 5 transfers", blast, 1),
        Case("flow", "4 senders writing 32 MiB at once to readers taking ~2 MB/s", slow, 1),
        Case(
            "flow",
            "a receiver that stops reading while 32 MiB come; another pair dials meanwhile",
            stall,
            1,
        ),
    ]


SCENARIOS: dict[str, Callable[[Options], list[Case]]] = {
    "relay": relay_cases,
    "dial": dial_cases,
    "join": join_cases,
    "scale": scale_cases,
    "churn": churn_cases,
    "formation": formation_cases,
    "eio4": eio4_cases,
    "flow": flow_cases,
}
