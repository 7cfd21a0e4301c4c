"""Engine.IO sessions and websockets, for both protocol generations.

python-engineio's aiohttp driver is close to what a public server needs but not
quite: it negotiates permessage-deflate on every websocket (costly on
already-compressed libp2p traffic, and off by default in JS socket.io >= 3),
reports every client as 127.0.0.1, and lets a malformed frame escape its
receive loop as an exception instead of closing that one connection.  Its
session loops also cost a task per frame.  This module holds the
replacements; ``eio3.py`` builds on them for Engine.IO v3.

:class:`Socket` is also what the rest of the server sees of a connection,
through the :class:`~wsstar.server.engineio.Session` protocol: it writes
Socket.IO packet text and pre-built frames, and says how far behind its
client is.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from engineio import async_socket
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp

from wsstar.wire.eio3 import TEXT_PACKET_TYPES

log = logging.getLogger("wsstar.engine")

Environ = dict[str, Any]

#: Text packets at least this long are written straight to an idle websocket.
DIRECT_TEXT_MIN = 4096

_TEXT = 0x81  # FIN + text
_BINARY = 0x82  # FIN + binary


def _frame_header(opcode: int, size: int) -> bytes:
    """An unmasked (server-to-client), uncompressed websocket frame header."""
    if size < 126:
        return struct.pack("!BB", opcode, size)
    if size < 65536:
        return struct.pack("!BBH", opcode, 126, size)
    return struct.pack("!BBQ", opcode, 127, size)


def text_frame(text: str) -> bytes:
    """A whole websocket text frame carrying ``text``."""
    data = text.encode()
    return _frame_header(_TEXT, len(data)) + data


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
        self._request = request
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size,
            compress=bool(getattr(self.server, "websocket_compression", False)),
        )
        await self._sock.prepare(request)
        self.environ = environ
        await self.handler(self)
        return self._sock

    async def send_many(self, messages: list[str | bytes]) -> None:
        """Write several frames with one transport write.

        A busy socket has many small frames queued at once (announcements, a
        relayed chunk's packet and attachment); a system call per frame was
        the largest single cost of relaying.  Frames are built here only
        when compression is off (server frames are unmasked, so the framing is
        a two-to-ten byte header); aiohttp's writer keeps doing everything
        else, and its flow control still applies.
        """
        if len(messages) == 1 or self._sock.compress:
            for message in messages:
                await self.send(message)
            return
        parts: list[bytes] = []
        for message in messages:
            if isinstance(message, str):
                data, opcode = message.encode(), _TEXT
            else:
                data, opcode = message, _BINARY
            parts.append(_frame_header(opcode, len(data)))
            parts.append(data)
        transport = self._transport()
        if transport is None:
            raise ConnectionResetError("websocket transport is closing")
        transport.writelines(parts)
        protocol = self._request.protocol
        if protocol.writing_paused:
            await protocol._drain_helper()

    def write_frames(self, frames: bytes) -> bool:
        """Write bytes that are already whole websocket frames, at once.

        The same announcement frames go to thousands of sockets; building
        them once and handing each transport the same bytes is what keeps
        fan-out cheap.  False when that cannot be done here (compression on,
        transport closing): the caller then queues the packets instead.
        There is no drain: the caller bounds what it writes by
        :meth:`buffered_bytes`.
        """
        transport = self._transport()
        if self._sock.compress or transport is None:
            return False
        transport.write(frames)
        return True

    def buffered_bytes(self) -> int:
        """Bytes written to the transport that the client has not taken yet."""
        transport = self._request.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def _transport(self) -> asyncio.Transport | None:
        """The connection's transport while it can still be written to."""
        transport = self._request.transport
        return None if transport is None or transport.is_closing() else transport

    async def wait(self) -> str | bytes:
        msg = await self._sock.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            text: str = msg.data
            if not text or text[0] not in TEXT_PACKET_TYPES:
                raise InvalidFrame(f"not an Engine.IO packet: {text[:40]!r}")
            return text
        if msg.type == aiohttp.WSMsgType.BINARY:
            data: bytes = msg.data
            return data
        if msg.type == aiohttp.WSMsgType.ERROR:
            log.info("websocket error from %s: %s", self.environ.get("REMOTE_ADDR"), msg.data)
        raise OSError("websocket closed")


class FrameChannel(Protocol):
    """One websocket as the session loops see it: whole Engine.IO frames."""

    async def send(self, message: str | bytes) -> None: ...

    async def send_many(self, messages: list[str | bytes]) -> None: ...

    def write_frames(self, frames: bytes) -> bool: ...

    def buffered_bytes(self) -> int: ...

    async def wait(self) -> str | bytes: ...

    async def close(self) -> None: ...


class Socket(async_socket.AsyncSocket):  # type: ignore[misc]
    """An Engine.IO session whose websocket loops cost no task per frame.

    python-engineio wraps every received frame in a new task plus a
    ``wait_for`` and every write batch in another; on a relay that carries
    thousands of frames per second that bookkeeping costs more than the
    relaying.  Sessions that upgrade from long-polling keep python-engineio's
    own handler: the probe handshake is rare and subtle.
    """

    connected: bool
    upgraded: bool
    closed: bool
    closing: bool

    #: The client's address, and whether it speaks Socket.IO v2 (set when it
    #: connects to the default namespace).
    remote = ""
    v2 = False
    #: Bytes of binary payload queued for this client and not yet written:
    #: what a slow reader makes the server hold (relay flow control).
    queued_bytes = 0
    #: The websocket while this session's own loops run it (see
    #: :meth:`write_frames`).
    _channel: FrameChannel | None = None

    def write_frames(self, frames: bytes) -> bool:
        """Write whole websocket frames now, bypassing the send queue.

        Only when nothing is queued ahead of them, so the client sees frames
        in the order they were sent; False means the caller must queue the
        packets instead (long-polling, an upgraded session, a busy queue).
        """
        channel = self._direct_channel()
        return channel is not None and channel.write_frames(frames)

    def _direct_channel(self) -> FrameChannel | None:
        if self.closing or self.closed or not self.queue.empty():
            return None
        return self._channel

    def buffered_bytes(self) -> int:
        """Bytes handed to the transport and not yet taken by the client."""
        return self._channel.buffered_bytes() if self._channel is not None else 0

    async def send(self, pkt: eio_packet.Packet) -> None:
        if pkt.binary:
            self.queued_bytes += len(pkt.data)
        await super().send(pkt)

    def send_text(self, text: str) -> None:
        """Send one text message (an encoded Socket.IO packet) to an open
        session: the path of every event and ack the rendezvous sends.

        Unlike :meth:`send` it does not check the heartbeat on every packet
        (the monitor does that for all sessions).
        """
        if self.closed or self.closing:
            return
        if (
            len(text) >= DIRECT_TEXT_MIN
            and (channel := self._direct_channel())
            and channel.write_frames(text_frame("4" + text))
        ):
            # A large reply (a join ack lists every peer) is written at once
            # and held only as the bytes on their way out, instead of as
            # several encoded copies waiting in the queue.  Small packets
            # still go through the queue: the writer sends all that a busy
            # socket has queued with one system call.
            return
        self.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, text))

    def send_binary(self, head: str, data: bytes) -> None:
        """Send a Socket.IO packet with one binary attachment (a relayed
        chunk): its text, then the attachment, as two messages."""
        if self.closed or self.closing:
            return
        self.queued_bytes += len(data)
        self.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, head))
        self.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data))

    def send_texts(self, texts: list[str]) -> None:
        """Queue several text messages (announcements that could not be
        written as frames at once)."""
        if self.closed or self.closing:
            return
        for text in texts:
            self.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, text))

    def queued_packets(self) -> int:
        """Messages waiting in the send queue."""
        size: int = self.queue.qsize()
        return size

    def _written(self, packets: list[Any]) -> None:
        for pkt in packets:
            if pkt is not None and pkt.binary:
                self.queued_bytes -= len(pkt.data)

    async def poll(self) -> list[eio_packet.Packet]:
        packets: list[eio_packet.Packet] = await super().poll()
        self._written(packets)
        return packets

    async def close(
        self, wait: bool = True, abort: bool = False, reason: str | None = None
    ) -> None:
        was_open = not (self.closed or self.closing)
        await super().close(wait=wait, abort=abort, reason=reason)
        if was_open:
            # Wake whoever waits on the queue: the websocket writer then closes
            # the websocket, which ends the reader (a heartbeat timeout detected
            # by the server's monitor needs no per-frame receive timer), and a
            # parked long-poll returns instead of hanging until its timeout.
            self.queue.put_nowait(None)

    async def _websocket_handler(self, ws: FrameChannel) -> None:
        if self.connected:
            await super()._websocket_handler(ws)
            return
        self.connected = True
        self.upgraded = True
        writer = asyncio.get_running_loop().create_task(self._write_loop(ws))
        self._channel = ws
        try:
            await self._read_loop(ws)
        finally:
            self._channel = None
            self.queue.put_nowait(None)  # ends the writer
            await writer
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _read_loop(self, ws: FrameChannel) -> None:
        # Messages go straight to the handler: python-engineio's dispatch
        # builds a packet object, two closures and an inspect call per frame,
        # and catches the handler's errors just as this loop does.
        on_message = self.server.handlers.get("message")
        while True:
            try:
                data = await ws.wait()
            except OSError:
                return
            try:
                if on_message is not None:
                    if isinstance(data, bytes):
                        await on_message(self.sid, data)
                        continue
                    if data.startswith("4"):
                        await on_message(self.sid, data[1:])
                        continue
                pkt = eio_packet.Packet(encoded_packet=data)
                await self.receive(pkt)
            except eio_exceptions.UnknownPacketError:
                continue
            except eio_exceptions.SocketIsClosedError:
                return
            except Exception:  # one bad packet must not kill the session loop
                log.exception("%s: error handling a packet", self.sid)

    async def _write_loop(self, ws: FrameChannel) -> None:
        queue = self.queue
        running = True
        while running:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            for _ in batch:
                queue.task_done()
            self._written(batch)
            if None in batch:
                running = False
                batch = batch[: batch.index(None)]
            if not batch:
                continue
            try:
                await ws.send_many([pkt.encode() for pkt in batch])
            except Exception:  # a dead transport ends the session
                break
        # Whatever is still queued will never be sent; account for it so that
        # close(wait=True), which joins the queue, cannot hang.
        while not queue.empty():
            self._written([queue.get_nowait()])
            queue.task_done()
        await ws.close()


def real_remote_address(
    translate: Callable[..., Environ | Awaitable[Environ]], trust_proxy: bool
) -> Callable[..., Environ]:
    """Wrap the driver's request translation so REMOTE_ADDR is the peer's
    address (the stock driver hard-codes 127.0.0.1), for logs and per-address
    limits.

    Behind a reverse proxy every peer is the proxy; with ``trust_proxy`` the
    last X-Forwarded-For entry is used instead: the address the proxy itself
    saw, the only one in that header a client cannot forge.
    """

    def translate_request(request: web.Request) -> Environ:
        environ = translate(request)
        assert isinstance(environ, dict)  # the aiohttp driver is synchronous
        remote = request.remote or ""
        if trust_proxy:
            forwarded = request.headers.getall("X-Forwarded-For", [])
            if forwarded:
                remote = forwarded[-1].rsplit(",", 1)[-1].strip() or remote
        environ["REMOTE_ADDR"] = remote
        return environ

    return translate_request
