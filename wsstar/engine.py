"""Engine.IO transport details shared by both protocol generations.

python-engineio's aiohttp driver is close to what a public server needs but not
quite: it negotiates permessage-deflate on every websocket (costly on
already-compressed libp2p traffic, and off by default in JS socket.io >= 3),
reports every client as 127.0.0.1, and lets a malformed frame escape its
receive loop as an exception instead of closing that one connection.  This
module holds the replacements; ``eio3.py`` builds on them for Engine.IO v3.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from engineio.async_drivers import aiohttp as eio_aiohttp

log = logging.getLogger("wsstar.engine")

Environ = dict[str, Any]

#: Engine.IO packet types a client may send as a text frame ('0'..'6').
_TEXT_PACKET_TYPES = frozenset("0123456")


class InvalidFrame(OSError):
    """A websocket frame that is not Engine.IO.

    It derives from OSError because python-engineio's receive loop treats an
    OSError from ``wait()`` as the end of the connection, which is exactly the
    clean close we want for garbage.
    """


class WebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
    """python-engineio's aiohttp websocket, with compression made optional and
    incoming frames checked before python-engineio parses them."""

    async def __call__(self, environ: Environ) -> web.WebSocketResponse:
        request: web.Request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size,
            compress=bool(getattr(self.server, "websocket_compression", False)),
        )
        await self._sock.prepare(request)
        self.environ = environ
        await self.handler(self)
        return self._sock

    async def wait(self) -> str | bytes:
        msg = await self._sock.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            text: str = msg.data
            if not text or text[0] not in _TEXT_PACKET_TYPES:
                raise InvalidFrame(f"not an Engine.IO packet: {text[:40]!r}")
            return text
        if msg.type == aiohttp.WSMsgType.BINARY:
            data: bytes = msg.data
            return data
        if msg.type == aiohttp.WSMsgType.ERROR:
            log.info("websocket error from %s: %s", self.environ.get("REMOTE_ADDR"), msg.data)
        raise OSError("websocket closed")


def real_remote_address(
    translate: Callable[..., Environ | Awaitable[Environ]],
) -> Callable[..., Environ]:
    """Wrap the driver's request translation so REMOTE_ADDR is the peer's
    address (the stock driver hard-codes 127.0.0.1), for logs and per-IP
    policies."""

    def translate_request(request: web.Request) -> Environ:
        environ = translate(request)
        assert isinstance(environ, dict)  # the aiohttp driver is synchronous
        environ["REMOTE_ADDR"] = request.remote or ""
        return environ

    return translate_request
