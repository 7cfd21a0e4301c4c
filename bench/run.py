"""Benchmark: the reference rendezvous server (libp2p-websocket-star-rendezvous
0.4.1, Node) and wsstar, side by side, under the same Node load generator.

    .venv/bin/python bench/run.py [--quick] [--scenario NAME ...] [--sizes 1000,5000]

Prints a table per scenario and writes bench/RESULTS.md (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import shlex
import signal
import statistics
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    BENCH,
    SCRATCH,
    SERVERS,
    Server,
    configure_wsstar,
    ensure_keys,
    ensure_npm,
    key_ids,
    machine,
    raise_nofile,
)
from scenarios import SCENARIOS, Case, Ctx, Keys, Options
from targets import target_table

#: Hand-written reasons behind the figures, kept with the results.
ANALYSIS = BENCH / "ANALYSIS.md"

ED_POOL = 2000
RSA_POOL = 200


@dataclass
class CaseResult:
    scenario: str
    name: str
    servers: tuple[str, ...]
    # figure -> server -> one value per run
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, server: str, metrics: dict[str, float]) -> None:
        for fig, v in metrics.items():
            self.values.setdefault(fig, {s: [] for s in self.servers})[server].append(float(v))

    def median(self, fig: str, server: str) -> float:
        vals = [v for v in self.values.get(fig, {}).get(server, []) if not math.isnan(v)]
        return statistics.median(vals) if vals else math.nan


def fmt(v: float) -> str:
    if math.isnan(v):
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def ratio(w: float, r: float) -> str:
    if math.isnan(w) or math.isnan(r) or r == 0:
        return "-"
    return f"{w / r:.2f}"


def table(res: CaseResult) -> list[str]:
    """One column per server, then each wsstar configuration's ratio to the
    reference when the reference was measured."""
    compared = [s for s in res.servers if s != "reference"] if "reference" in res.servers else []
    heads = list(res.servers) + [f"{s}/ref" for s in compared]
    lines = ["| figure | " + " | ".join(heads) + " |", "| --- |" + " ---: |" * len(heads)]
    for fig in res.values:
        cells = [fmt(res.median(fig, s)) for s in res.servers]
        cells += [ratio(res.median(fig, s), res.median(fig, "reference")) for s in compared]
        lines.append(f"| {fig} | " + " | ".join(cells) + " |")
    return lines


def raw_lines(res: CaseResult) -> list[str]:
    lines = []
    for fig, per in res.values.items():
        parts = [f"{s}: " + ", ".join(fmt(v) for v in vals) for s, vals in per.items()]
        lines.append(f"- {fig}: " + "; ".join(parts))
    return lines


@dataclass
class Run:
    command: str
    started: str
    opts: Options
    info: dict[str, str]
    results: list[CaseResult] = field(default_factory=list)
    finished: bool = False
    total_cases: int = 0
    wsstar_args: str = ""

    def markdown(self, heading: bool = True) -> str:
        o = self.opts
        mode = "quick" if o.quick else "full"
        title = "# Benchmark results: reference vs wsstar" if heading else f"# Further run ({mode})"
        out = [
            title,
            "",
            f"- date: {self.started}",
            f"- machine: nproc {self.info['nproc']}, memory {self.info['memory']}, "
            f"{self.info['cpu']}, Linux {self.info['kernel']}",
            f"- node {self.info['node']}, python {self.info['python']}"
            + (f", wsstar at {self.info['wsstar']}" if "wsstar" in self.info else ""),
            f"- command: `{self.command}`",
            f"- status: {'complete' if self.finished else 'in progress'} "
            f"({len(self.results)} of {self.total_cases} cases)",
            "",
            "Servers: `libp2p-websocket-star-rendezvous@0.4.1` (Node) and wsstar (Python, "
            "uvloop), each on 127.0.0.1 with the crypto challenge on, strict multiaddr on, "
            "metrics off"
            + (
                f" (wsstar also with `{self.wsstar_args}`: no per-address limits, "
                "which would refuse a load that all comes from 127.0.0.1, and "
                "re-announcements without a budget, like the reference; *wsstar-budget* "
                "is the same but with the default announcement budget, "
                "`--announce-budget 100`, the configuration users run)"
                if self.wsstar_args
                else ""
            )
            + "; a fresh server process for every measurement, measured alone, the "
            "order alternating between repeats. Load: socket.io-client 2.5.0 (Engine.IO v3, "
            "websocket transport, one connection per peer) in several Node processes "
            "(bench/load/worker.js). CPU seconds are utime+stime from /proc of the server "
            "process and of all load-generator processes over the measured interval; RSS is "
            "VmRSS, peak RSS VmHWM. Latency percentiles are nearest-rank. Tables give the "
            "median of each case's runs (how many is given per case); every run's value is "
            "under *raw*. In wsstar/ref a ratio above 1 means "
            "wsstar is higher (better for rates, worse for latency, CPU and memory). "
            "Server and load generator share the machine's cores: where both together "
            "need more than it has (scale), a figure is the limit of the whole system; the "
            "CPU rows show which side used what.",
            "",
        ]
        if heading:
            out += ["## Targets", "", *target_table(self.results), ""]
        for res in self.results:
            out.append(f"## {res.scenario}: {res.name}" + ("" if heading else f" ({mode})"))
            runs = max((len(v) for per in res.values.values() for v in per.values()), default=0)
            out.append("")
            out.append(f"median of {runs} runs per server" if runs > 1 else "one run per server")
            out.append("")
            out.extend(table(res))
            out.append("")
            out.append("raw (per run):")
            out.append("")
            out.extend(raw_lines(res))
            if res.errors:
                out.append("")
                out.append("errors:")
                out.append("")
                out.extend(f"- {e}" for e in res.errors)
            out.append("")
        if heading and ANALYSIS.exists():
            out.append(ANALYSIS.read_text())
        return "\n".join(out)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one repeat, smaller counts")
    p.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only these (repeatable); default: relay dial join scale churn",
    )
    p.add_argument(
        "--sizes",
        help="scale: comma-separated peer counts (default 1000,2000,5000,10000; --quick 500)",
    )
    p.add_argument(
        "--formation-sizes",
        help="formation: comma-separated swarm sizes (default 1000,10000; --quick 2000)",
    )
    p.add_argument("--repeats", type=int, help="repeats of relay, dial, join (default 3 / 1)")
    p.add_argument("--dials", type=int, help="dials per dial run (default 40000 / 5000)")
    p.add_argument("--churn", type=int, help="churn cycles (default 10000 / 2000)")
    p.add_argument(
        "--hold",
        type=float,
        help="scale: seconds held, a multiple of the 10 s interval (default 30; --quick 20)",
    )
    p.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated subset to measure (wsstar-budget runs only in scale, formation)",
    )
    p.add_argument(
        "--keep-wsstar-limits",
        action="store_true",
        help="run wsstar with its default per-address limits and announce budget",
    )
    p.add_argument(
        "--render",
        action="append",
        metavar="JSON",
        help="measure nothing: write --out from saved bench/.scratch/results-*.json (repeatable)",
    )
    p.add_argument(
        "--append",
        action="store_true",
        help="add this run's results after what --out already holds",
    )
    p.add_argument(
        "--out", default=str(BENCH / "RESULTS.md"), help="markdown output (bench/RESULTS.md)"
    )
    return p.parse_args(argv)


def make_options(a: argparse.Namespace) -> Options:
    quick = bool(a.quick)
    sizes = (
        [int(x) for x in a.sizes.split(",")]
        if a.sizes
        else [500]
        if quick
        else [1000, 2000, 5000, 10000]
    )
    formation_sizes = (
        [int(x) for x in a.formation_sizes.split(",")]
        if a.formation_sizes
        else [2000]
        if quick
        else [1000, 10000]
    )
    servers = [s for s in a.servers.split(",") if s]
    for s in servers:
        if s not in SERVERS:
            raise SystemExit(f"unknown server {s!r}")
    return Options(
        quick=quick,
        repeats=a.repeats or (1 if quick else 3),
        sizes=sizes,
        formation_sizes=formation_sizes,
        # whole announcement intervals: every peer is then announced the same
        # number of times in the window, whatever the phase of its timer
        hold=max(20.0, 10.0 * round((a.hold or (20.0 if quick else 30.0)) / 10.0)),
        dials=a.dials or (5000 if quick else 40000),
        joins_ed25519=2000 if quick else 6000,
        joins_rsa=1000 if quick else 3000,
        churn=a.churn or (2000 if quick else 10000),
        relay_events=20000 if quick else 50000,
        servers=servers,
    )


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def run_case(ctx: Ctx, case: Case, servers: list[str]) -> CaseResult:
    names = tuple(s for s in case.servers if s in servers)
    res = CaseResult(case.scenario, case.name, names)
    for rep in range(case.repeats):
        order = list(names) if rep % 2 == 0 else list(reversed(names))
        for name in order:
            server = Server(name)
            log(f"{case.scenario}: {case.name} [{name}, run {rep + 1}/{case.repeats}]")
            ctx.notes.clear()
            try:
                await server.start()
                metrics = await case.run(ctx, server)
                res.add(name, metrics)
                for note in ctx.notes:
                    res.errors.append(f"{name} run {rep + 1}: {note}")
                    log(f"  {name}: load generator saw errors: {note}")
                short = ", ".join(f"{k} {fmt(v)}" for k, v in list(metrics.items())[:3])
                log(f"  {name}: {short}")
            except Exception as exc:
                msg = f"{name} run {rep + 1}: {type(exc).__name__}: {exc}"
                log("  FAILED " + msg)
                traceback.print_exc(file=sys.stderr)
                res.errors.append(msg)
            finally:
                await server.stop()
            await asyncio.sleep(1.0)
    return res


async def main_async(a: argparse.Namespace, command: str, prefix: str) -> int:
    opts = make_options(a)
    nofile = raise_nofile()
    if max(opts.sizes + opts.formation_sizes) + 1000 > nofile:
        log(f"warning: RLIMIT_NOFILE is {nofile}; sizes above ~{nofile - 1000} will fail")
    ensure_npm(log)
    extra = configure_wsstar(bool(a.keep_wsstar_limits))
    ed = ensure_keys("ed25519", ED_POOL, log)
    rsa = ensure_keys("rsa", RSA_POOL, log)
    keys = Keys(ed, key_ids(ed), rsa, key_ids(rsa))
    ctx = Ctx(opts, keys, log)
    names = a.scenario or ["relay", "dial", "join", "scale", "churn"]
    cases = [c for n in names for c in SCENARIOS[n](opts)]
    run = Run(
        command=command,
        started=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        opts=opts,
        info=machine(),
        wsstar_args=" ".join(extra),
        total_cases=len(cases),
    )
    out = Path(a.out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw_json = SCRATCH / f"results-{stamp}.json"
    log(f"{len(cases)} cases; servers {', '.join(opts.servers)}; writing {out}")

    def save() -> None:
        out.write_text(prefix + run.markdown(heading=not prefix) + "\n")
        raw_json.write_text(
            json.dumps(
                {
                    "command": run.command,
                    "started": run.started,
                    "info": run.info,
                    "options": asdict(opts),
                    "wsstar_args": run.wsstar_args,
                    "finished": run.finished,
                    "total_cases": run.total_cases,
                    "results": [asdict(r) for r in run.results],
                },
                indent=1,
            )
        )

    for case in cases:
        res = await run_case(ctx, case, opts.servers)
        run.results.append(res)
        print()
        print(f"## {res.scenario}: {res.name}")
        print("\n".join(table(res)))
        print(flush=True)
        save()
    run.finished = True
    save()
    log(f"done; results in {out}")
    return 0


def load_run(path: Path) -> Run:
    """A run saved as bench/.scratch/results-*.json."""
    d = json.loads(path.read_text())
    results = [
        CaseResult(
            scenario=r["scenario"],
            name=r["name"],
            servers=tuple(r["servers"]),
            values=r["values"],
            errors=list(r["errors"]),
        )
        for r in d["results"]
    ]
    args = d.get("wsstar_args")
    if args is None:
        args = " ".join(configure_wsstar(False))
    return Run(
        command=d["command"],
        started=d["started"],
        opts=Options(**d["options"]),
        info=d["info"],
        results=results,
        finished=bool(d.get("finished", True)),
        total_cases=int(d.get("total_cases", len(results))),
        wsstar_args=args,
    )


def render(paths: list[str], out: Path) -> int:
    """Write `out` from saved runs, the first as the main report."""
    runs = [load_run(Path(p)) for p in paths]
    parts = [r.markdown(heading=i == 0) for i, r in enumerate(runs)]
    out.write_text("\n\n".join(p.rstrip() for p in parts) + "\n")
    print(f"wrote {out}")
    return 0


def main() -> int:
    a = parse_args(sys.argv[1:])
    if a.render:
        return render(a.render, Path(a.out))
    command = " ".join(shlex.quote(x) for x in [".venv/bin/python", "bench/run.py", *sys.argv[1:]])

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # also when started in the background, where SIGINT is inherited as ignored
    signal.signal(signal.SIGINT, on_term)
    out = Path(a.out)
    prefix = out.read_text().rstrip() + "\n\n" if a.append and out.exists() else ""
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main_async(a, command, prefix))
    return 130


if __name__ == "__main__":
    sys.exit(main())
