"""TCP connections before HTTP: caps per client address and a deadline for
the first request's headers.

aiohttp reads request headers with no deadline (its keep-alive timeout only
starts once a request is done), and the connection caps of the service count
Engine.IO sessions, so a client holding thousands of half-sent requests would
reach the open-file limit while nothing counted it.  Every connection passes
through :class:`_Guard` on its way to aiohttp's own protocol: it is refused
at accept time when its address holds too many, and closed when its first
request's headers are not complete within :data:`HEADER_DEADLINE`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import http_exceptions, web

from wsstar.server.logtext import printable

log = logging.getLogger("wsstar")

#: Seconds a new connection has to send the headers of its first request.
HEADER_DEADLINE = 10.0
#: Seconds an idle keep-alive connection is kept (aiohttp's default is an hour).
KEEPALIVE_TIMEOUT = 75.0
#: Seconds aiohttp goes on reading a body refused unread (one over the size
#: limit) before it closes the connection: time for the client to read the
#: refusal rather than meet a reset.  aiohttp's 10 s default also holds the
#: request that long when the client has already gone, which it does not
#: notice then: an attacker sending such requests by the thousand kept them.
LINGERING_TIME = 2.0
#: Seconds between warnings that file descriptors run short.
FD_WARNING_INTERVAL = 60.0


class ConnectionGate:
    """What the guard asks before and after each TCP connection."""

    def __init__(
        self,
        admit: Callable[[str], bool],
        release: Callable[[str], None],
        too_slow: Callable[[str, float], None],
        open_files_limit: int,
    ) -> None:
        self.admit = admit
        self.release = release
        #: Told of each connection closed for its slow headers, and the deadline.
        self.too_slow = too_slow
        self.open_files_limit = open_files_limit
        self.open = 0
        self._warned = 0.0

    def opened(self) -> None:
        self.open += 1
        if self.open_files_limit and self.open > 0.9 * self.open_files_limit:
            now = time.monotonic()
            if now - self._warned > FD_WARNING_INTERVAL:
                self._warned = now
                log.warning(
                    "%d connections open, near the open-file limit of %d: new ones will soon fail",
                    self.open,
                    self.open_files_limit,
                )


class _Guard(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the gate and the deadline."""

    __slots__ = ("_deadline", "_gate", "_inner", "_peer", "_tail")

    def __init__(self, inner: Any, gate: ConnectionGate) -> None:
        self._inner = inner
        self._gate = gate
        self._peer: str | None = None
        self._deadline: asyncio.TimerHandle | None = None
        #: The last bytes seen until the first request's headers end.
        self._tail: bytes | None = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self._inner.connection_made(transport)
        if not self._gate.admit(address):
            transport.close()
            return
        self._peer = address
        self._gate.opened()
        self._deadline = asyncio.get_running_loop().call_later(
            HEADER_DEADLINE, self._too_slow, transport
        )

    def _too_slow(self, transport: asyncio.BaseTransport) -> None:
        self._deadline = None
        if self._tail is not None:
            if self._peer is not None:
                self._gate.too_slow(self._peer, HEADER_DEADLINE)
            transport.close()

    def data_received(self, data: bytes) -> None:
        if self._tail is not None:
            seen = self._tail + data
            if b"\r\n\r\n" in seen:
                self._tail = None
                if self._deadline is not None:
                    self._deadline.cancel()
                    self._deadline = None
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._peer is not None:
            self._gate.open -= 1
            self._gate.release(self._peer)
            self._peer = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedSite(web.TCPSite):
    """aiohttp's TCP site, with every connection behind a :class:`ConnectionGate`."""

    __slots__ = ("_gate",)

    def __init__(self, runner: web.BaseRunner, gate: ConnectionGate, **kwargs: Any) -> None:
        super().__init__(runner, **kwargs)
        self._gate = gate

    async def start(self) -> None:
        # aiohttp's TCPSite.start, with the protocol factory wrapped.
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        gate = self._gate
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Guard(server(), gate),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]
        else:
            self._bound_port = self._port


class OneLineParseErrors(logging.Filter):
    """aiohttp logs each request it cannot parse (a URL or header over its
    limits, garbage) with a whole traceback; any client can send those, so
    they become one line without one."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, http_exceptions.HttpProcessingError):
            what = record.getMessage()
            reason = printable((str(error.message).splitlines() or [""])[0], 160)
            record.msg, record.args = "%s: %s", (what, reason)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True
