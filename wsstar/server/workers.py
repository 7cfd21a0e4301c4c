"""``--workers N``: N server processes on one port, one swarm through Redis.

A supervisor process starts N workers, each a cluster node of its own (its
own node id, joined to the others through ``--redis-url``) listening on the
same port with ``SO_REUSEPORT``, and restarts one that dies.  The kernel
spreads TCP connections over the workers one by one, which suits websockets
(one connection for a session's life) but not long-polling, whose requests
each open or reuse a connection of their own and may reach any worker.

So that polling works anyway, each worker also listens on a loopback port of
its own, every session id starts with the index of the worker that made it
(``3.Xq…``), and a worker given a request for another worker's session
passes it on to that worker's port: the request and its answer for polling,
the whole connection for a websocket upgrade.  Sessions on websockets from
the start, as the published libp2p clients open them, are never passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from wsstar.server.health import Listening, remove_state, write_state

log = logging.getLogger("wsstar")

#: How the supervisor tells a worker its place: ``INDEX:PORT,PORT,...``, the
#: loopback port of every worker in index order.
WORKER_ENV = "WSSTAR_WORKER"
#: Seconds before restarting a worker that died, doubling while it keeps
#: dying within a minute of its start.
RESTART_FIRST, RESTART_MOST = 1.0, 30.0
#: Headers that belong to one hop and are not passed on.
_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"}
)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a worker stands among its siblings."""

    index: int
    #: The loopback port of each worker, by index.
    ports: tuple[int, ...]

    @property
    def prefix(self) -> str:
        """What every Engine.IO session id this worker makes starts with."""
        return f"{self.index}."

    def owner(self, sid: str) -> int | None:
        """The worker that made session ``sid``, if it is another one.

        Session ids are base64url, which has no ``.``: the prefix is
        everything before the first one."""
        head, dot, _ = sid.partition(".")
        if not dot or not head.isdigit():
            return None
        index = int(head)
        return index if index != self.index and index < len(self.ports) else None

    @classmethod
    def from_env(cls, value: str | None) -> Place | None:
        if not value:
            return None
        index, _, ports = value.partition(":")
        return cls(int(index), tuple(int(p) for p in ports.split(",")))

    def encode(self) -> str:
        return f"{self.index}:{','.join(map(str, self.ports))}"


# -- in a worker: passing requests on -----------------------------------------------


class PassingOn:
    """Sends Engine.IO requests for another worker's session there (an
    aiohttp middleware, with a client session opened and closed with the app)."""

    def __init__(self, place: Place) -> None:
        self.place = place
        self._client: aiohttp.ClientSession | None = None

    async def open(self, app: web.Application) -> None:
        # No total timeout: a long-poll waits as long as its owner holds it.
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5), auto_decompress=False
        )

    async def close(self, app: web.Application) -> None:
        if self._client is not None:
            await self._client.close()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        sid = request.query.get("sid", "")
        owner = self.place.owner(sid) if request.path.startswith("/socket.io") else None
        if owner is None or self._client is None:
            return await handler(request)
        url = f"http://127.0.0.1:{self.place.ports[owner]}{request.path_qs}"
        headers = _forwarded(request)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await _pass_websocket(request, self._client, url, headers)
        try:
            async with self._client.request(
                request.method, url, headers=headers, data=await request.read()
            ) as upstream:
                body = await upstream.read()
                response = web.Response(status=upstream.status, body=body)
                for name, value in upstream.headers.items():
                    if name.lower() not in _HOP:
                        response.headers.add(name, value)
                return response
        except aiohttp.ClientError:
            return web.Response(status=502, text="this session's worker is not reachable")


def _forwarded(request: web.Request) -> dict[str, str]:
    """The request's headers for the owner, with the client's address added
    to ``X-Forwarded-For`` (which the owner reads only with --trust-proxy)."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
    chain = request.headers.get("X-Forwarded-For")
    remote = request.remote or ""
    headers["X-Forwarded-For"] = f"{chain}, {remote}" if chain else remote
    return headers


async def _pass_websocket(
    request: web.Request, client: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> web.StreamResponse:
    """Relay a websocket between the client and the session's own worker."""
    headers = {
        k: v
        for k, v in headers.items()
        if not k.lower().startswith("sec-websocket") and k.lower() != "origin"
    }
    try:
        upstream = await client.ws_connect(
            url, headers=headers, origin=request.headers.get("Origin"), autoping=False
        )
    except aiohttp.ClientError:
        return web.Response(status=502, text="this session's worker is not reachable")
    downstream = web.WebSocketResponse(autoping=False, max_msg_size=0)
    await downstream.prepare(request)

    async def pump(
        source: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
        sink: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
    ) -> None:
        async for message in source:
            if message.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type == aiohttp.WSMsgType.PING:
                await sink.ping(message.data)
            elif message.type == aiohttp.WSMsgType.PONG:
                await sink.pong(message.data)
        await sink.close()

    tasks = [
        asyncio.ensure_future(pump(downstream, upstream)),
        asyncio.ensure_future(pump(upstream, downstream)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await upstream.close()
        with contextlib.suppress(Exception):
            await downstream.close()
    return downstream


# -- the supervisor --------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _stop_with_supervisor() -> None:
    """In a worker: be told SIGTERM when the supervisor dies, however it
    dies, rather than serve on alone (Linux; elsewhere nothing happens)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _loopback_ports(count: int) -> tuple[int, ...]:
    """Free loopback ports, one per worker, chosen once so that a restarted
    worker takes its place again."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return tuple(s.getsockname()[1] for s in sockets)
    finally:
        for s in sockets:
            s.close()


def _reserve(host: str, port: int) -> socket.socket:
    """The public port, bound (not listening) with SO_REUSEPORT for as long
    as the supervisor runs: port 0 becomes one real port every worker shares."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, port))
    return s


def supervise(
    args: Sequence[str],
    host: str,
    port: int,
    workers: int,
    grace: float,
    state: tuple[str, str] | None = None,
) -> int:
    """Run ``workers`` copies of this server on one port until SIGINT or
    SIGTERM; with ``state`` (file, scheme), write where they listen."""
    try:
        reserved = _reserve(host, port)
    except OSError as exc:
        print(f"wsstar-server: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    with reserved:
        port = reserved.getsockname()[1]
        if state is not None:
            # Any worker may answer the health check: no instance to match.
            write_state(state[0], Listening(state[1], host, port, ""))
        try:
            return asyncio.run(_Supervisor(args, host, port, workers, grace).run())
        finally:
            if state is not None:
                remove_state(state[0], "")


class _Supervisor:
    def __init__(
        self, args: Sequence[str], host: str, port: int, workers: int, grace: float
    ) -> None:
        self._args = [*_without_port(args), "--port", str(port)]
        self._host, self._port = host, port
        self._ports = _loopback_ports(workers)
        self._grace = grace
        self._stopping = asyncio.Event()
        self._procs: list[asyncio.subprocess.Process | None] = [None] * workers
        self._ready = asyncio.Event()
        self._listening = 0

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._signal_all, signal.SIGHUP)
        keepers = [asyncio.ensure_future(self._keep(i)) for i in range(len(self._procs))]
        ready = asyncio.ensure_future(self._ready.wait())
        stop = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({ready, stop}, return_when=asyncio.FIRST_COMPLETED)
        if self._ready.is_set():
            host = f"[{self._host}]" if ":" in self._host else self._host
            workers = len(self._procs)
            print(f"Listening on: http://{host}:{self._port} ({workers} workers)", flush=True)
        await self._stopping.wait()
        ready.cancel()
        self._signal_all(signal.SIGTERM)
        await asyncio.wait(keepers, timeout=self._grace + 5)
        for proc in self._procs:
            if proc is not None and proc.returncode is None:
                proc.kill()
        await asyncio.wait(keepers, timeout=5)
        print("Rendezvous server stopped", flush=True)
        return 0

    def _signal_all(self, sig: int) -> None:
        for proc in self._procs:
            if proc is not None and proc.returncode is None:
                proc.send_signal(sig)

    async def _keep(self, index: int) -> None:
        """Run worker ``index``, and again whenever it dies, until stopping."""
        delay = RESTART_FIRST
        loop = asyncio.get_running_loop()
        place = Place(index, self._ports)
        env = {**os.environ, WORKER_ENV: place.encode()}
        first = True
        while not self._stopping.is_set():
            started = loop.time()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "wsstar",
                *self._args,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                preexec_fn=_stop_with_supervisor,
            )
            self._procs[index] = proc
            assert proc.stdout is not None
            async for raw in proc.stdout:
                line = raw.decode(errors="replace")
                if line.startswith("Listening on:"):
                    if first:
                        first = False
                        self._listening += 1
                        if self._listening == len(self._procs):
                            self._ready.set()
                elif not line.startswith("Rendezvous server stopped"):
                    sys.stdout.write(line)
                    sys.stdout.flush()
            code = await proc.wait()
            if self._stopping.is_set():
                return
            if loop.time() - started > 60:
                delay = RESTART_FIRST
            log.warning("worker %d exited with %s; starting it again in %gs", index, code, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, RESTART_MOST)


def _without_port(args: Sequence[str]) -> list[str]:
    """The command line without its port (the supervisor gives the real one)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--port", "-p"):
            skip = True
        elif not arg.startswith(("--port=", "-p=")):
            out.append(arg)
    return out
