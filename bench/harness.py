"""Processes for the benchmark: the two servers, the Node load-generator
workers, /proc readings, the npm install and the key cache.

Every child gets PR_SET_PDEATHSIG (it dies with the runner), every wait has a
timeout, and everything listens on or connects to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsstar.server.config import ServerConfig

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SCRATCH = BENCH / ".scratch"
NODE_MODULES = SCRATCH / "node_modules"
LOGS = SCRATCH / "logs"
WORKER_JS = BENCH / "load" / "worker.js"
KEYS_JS = BENCH / "load" / "keys.js"
REFERENCE_BIN = NODE_MODULES / "libp2p-websocket-star-rendezvous" / "src" / "bin.js"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: "wsstar-budget" is wsstar with its default announcement budget (the
#: configuration the scale targets are about); "wsstar" re-announces at the
#: reference's rate, for a like-for-like comparison.
SERVERS = ("reference", "wsstar", "wsstar-budget")
#: The budget wsstar-budget runs with: wsstar's own default.
DEFAULT_ANNOUNCE_BUDGET = ServerConfig().announce_budget

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the runner exits."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def raise_nofile() -> int:
    """Raise RLIMIT_NOFILE to the hard limit; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def node_env() -> dict[str, str]:
    env = dict(os.environ)
    env["NODE_PATH"] = str(NODE_MODULES)
    env.pop("DEBUG", None)
    return env


# --------------------------------------------------------------- setup


def ensure_npm(log: Any = print) -> None:
    """`npm ci` the pinned packages into bench/.scratch when the lock changed."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    lock = BENCH / "package-lock.json"
    pkg = BENCH / "package.json"
    have_lock = SCRATCH / "package-lock.json"
    installed = NODE_MODULES / ".package-lock.json"
    fresh = (
        installed.exists()
        and have_lock.exists()
        and have_lock.read_bytes() == lock.read_bytes()
        and (SCRATCH / "package.json").read_bytes() == pkg.read_bytes()
        and REFERENCE_BIN.exists()
    )
    if fresh:
        return
    log("npm ci in bench/.scratch ...")
    shutil.copyfile(pkg, SCRATCH / "package.json")
    shutil.copyfile(lock, have_lock)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=SCRATCH,
        check=True,
        timeout=900,
    )


def ensure_keys(kind: str, count: int, log: Any = print) -> Path:
    """A cached pool of `count` private keys of `kind` (ed25519 or rsa)."""
    path = SCRATCH / f"keys-{kind}-{count}.json"
    if not path.exists():
        log(f"generating {count} {kind} keys ...")
        subprocess.run(
            ["node", str(KEYS_JS), str(path), kind, str(count)],
            check=True,
            timeout=1800,
            env=node_env(),
        )
    return path


def key_ids(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    return [str(r["id"]) for r in data]


def address(peer_id: str, port: int) -> str:
    """Same form as address() in load/common.js (the port is only a label)."""
    return f"/ip4/127.0.0.1/tcp/{port}/ws/p2p-websocket-star/ipfs/{peer_id}"


def pool_address(ids: list[str], n: int) -> str:
    """Same scheme as poolAddress in load/common.js."""
    return address(ids[n % len(ids)], 1 + (n // len(ids)) % 65535)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# Per-client-address and per-connection rate limits and the announcement
# budget of wsstar are off in the benchmark: every load connection comes from
# 127.0.0.1, the load is far above any human rate, and the reference has none
# of them (announce budget 0 = every peer every interval, as the
# reference does). Flags the installed wsstar does not know are left out.
WSSTAR_UNLIMITED = (
    ("--max-connections", "0"),
    ("--max-connections-per-ip", "0"),
    ("--joins-per-ip", "0"),
    ("--dials-per-ip", "0"),
    ("--events-per-connection", "0"),
    ("--announce-budget", "0"),
)
WSSTAR_EXTRA_ARGS: list[str] = []


def configure_wsstar(keep_limits: bool) -> list[str]:
    """Decide the extra wsstar flags once per run; returns them."""
    WSSTAR_EXTRA_ARGS.clear()
    if keep_limits:
        return []
    helptext = subprocess.run(
        [sys.executable, "-m", "wsstar", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(ROOT),
    ).stdout
    for flag, value in WSSTAR_UNLIMITED:
        if flag in helptext.split():
            WSSTAR_EXTRA_ARGS.extend([flag, value])
    return list(WSSTAR_EXTRA_ARGS)


def without_budget(args: list[str]) -> list[str]:
    """``args`` without an ``--announce-budget`` flag and its value."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--announce-budget":
            skip = True
        else:
            out.append(arg)
    return out


# --------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (a supervisor's workers)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            out.extend(process_tree(int(child)))
    return out


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def wsstar_revision() -> str:
    """The measured wsstar: commit, and whether its sources had local changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=str(ROOT),
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "wsstar"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=str(ROOT),
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} with uncommitted changes" if dirty else head or "unknown"


def machine() -> dict[str, str]:
    mem = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30)
    return {
        "wsstar": wsstar_revision(),
        "nproc": str(os.cpu_count() or 0),
        "memory": mem,
        "cpu": cpu,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "node": node.stdout.strip(),
    }


# --------------------------------------------------------------- processes


async def _spawn(
    argv: list[str],
    *,
    env: dict[str, str],
    log_path: Path,
    stdin: bool = False,
    stdout: bool = False,
) -> asyncio.subprocess.Process:
    LOGS.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if stdout else log_file,
            stderr=log_file,
            env=env,
            cwd=str(ROOT),
            preexec_fn=_die_with_parent,
            limit=256 * 1024 * 1024,
        )
    finally:
        log_file.close()


async def _terminate(proc: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), grace)


@dataclass
class Server:
    """One rendezvous server on 127.0.0.1, challenge on, strict multiaddr on,
    metrics off unless asked for (wsstar only)."""

    name: str
    metrics: bool = False
    port: int = 0
    proc: asyncio.subprocess.Process | None = None
    cpu_at_start: float = 0.0
    #: More wsstar flags (a cluster node's --redis-url).
    more_args: list[str] = field(default_factory=list)
    #: Tells apart the logs of several servers of one name.
    tag: str = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        self.port = free_port()
        env = dict(os.environ)
        for var in ("DEBUG", "DISABLE_CRYPTO_CHALLENGE", "DISABLE_STRICT_MULTIADDR", "LOG_LEVEL"):
            env.pop(var, None)
        if self.name == "reference":
            env.update(PORT=str(self.port), HOST=HOST, DISABLE_METRICS="1")
            argv = ["node", str(REFERENCE_BIN)]
        elif self.name in ("wsstar", "wsstar-budget"):
            argv = [
                sys.executable,
                "-m",
                "wsstar",
                "--host",
                HOST,
                "--port",
                str(self.port),
                *([] if self.metrics else ["--disable-metrics"]),
                "--log-level",
                "warning",
                *self.extra_args(),
                *self.more_args,
            ]
        else:
            raise ValueError(self.name)
        self.proc = await _spawn(argv, env=env, log_path=LOGS / f"server-{self.name}{self.tag}.log")
        await self._wait_ready(timeout)
        self.cpu_at_start = cpu_seconds(self.pid)

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.returncode is not None:
                raise RuntimeError(f"{self.name} server exited with {self.proc.returncode}")
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, self.port), 2.0
                )
                writer.write(f"GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
                await writer.drain()
                head = await asyncio.wait_for(reader.readline(), 5.0)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
                if b" 200" in head:
                    return
            except (OSError, TimeoutError) as exc:
                last = exc
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} server not ready in {timeout}s: {last}")

    def extra_args(self) -> list[str]:
        if self.name == "wsstar-budget":
            return without_budget(WSSTAR_EXTRA_ARGS)
        return list(WSSTAR_EXTRA_ARGS)

    @property
    def announce_budget(self) -> int | None:
        """Re-announcements per socket per interval, None for the reference's
        every-peer-every-interval."""
        return DEFAULT_ANNOUNCE_BUDGET if self.name == "wsstar-budget" else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def peers(self) -> int:
        """The swarm a wsstar server counts (the whole cluster's, for a node)."""
        with urllib.request.urlopen(self.url + "/health", timeout=10) as resp:
            return int(json.load(resp)["peers"])

    def cpu(self) -> float:
        """CPU seconds of the server, its workers included."""
        return sum(cpu_seconds(p) for p in process_tree(self.pid))

    def memory_mib(self) -> dict[str, float]:
        """RSS and peak RSS, summed over the server and its workers."""
        total: dict[str, float] = {}
        for p in process_tree(self.pid):
            for k, v in memory_kib(p).items():
                total[k] = total.get(k, 0.0) + v / 1024
        return total

    async def stop(self) -> None:
        if self.proc is not None:
            await _terminate(self.proc)


class WorkerError(RuntimeError):
    pass


@dataclass
class Worker:
    """One `node bench/load/worker.js` process, driven by JSON lines."""

    config: dict[str, Any]
    proc: asyncio.subprocess.Process | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        role = str(self.config.get("role", "worker"))
        self.proc = await _spawn(
            ["node", "--max-old-space-size=4096", str(WORKER_JS)],
            env=node_env(),
            log_path=LOGS / f"worker-{role}.log",
            stdin=True,
            stdout=True,
        )
        await self.send(self.config)

    async def send(self, obj: dict[str, Any]) -> None:
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        await self.proc.stdin.drain()

    async def recv(self, kind: str, timeout: float) -> dict[str, Any]:
        """The next message of type `kind` (an error message raises)."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            for i, msg in enumerate(self.pending):
                if msg.get("type") == kind:
                    return self.pending.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerError(f"{self.config.get('role')}: no {kind!r} within {timeout:.0f}s")
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), left)
            except TimeoutError:
                continue
            if not line:
                raise WorkerError(
                    f"{self.config.get('role')} exited ({self.proc.returncode}) before {kind!r}"
                )
            msg = json.loads(line)
            if msg.get("type") == "error":
                raise WorkerError(f"{self.config.get('role')}: {msg.get('message')}")
            self.pending.append(msg)

    async def ask(self, cmd: dict[str, Any], reply: str, timeout: float) -> dict[str, Any]:
        await self.send(cmd)
        return await self.recv(reply, timeout)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await self.send({"cmd": "exit"})
        try:
            await asyncio.wait_for(self.proc.wait(), 3.0)
        except TimeoutError:
            await _terminate(self.proc, 2.0)


class Fleet:
    """A set of workers started together and always stopped together."""

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        self.workers = [Worker(c) for c in configs]

    async def __aenter__(self) -> Fleet:
        try:
            for w in self.workers:
                await w.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)

    async def all(self, kind: str, timeout: float) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(w.recv(kind, timeout) for w in self.workers)))

    async def broadcast(self, cmd: dict[str, Any]) -> None:
        for w in self.workers:
            await w.send(cmd)

    def cpu(self) -> float:
        return sum(w.cpu() for w in self.workers)
