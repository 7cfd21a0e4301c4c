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
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from engineio import async_socket, payload
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp

from wsstar.server.logtext import printable
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

    def write_frames(self, frames: list[bytes]) -> bool:
        """Write bytes that are already whole websocket frames, at once.

        The same announcement frames go to thousands of sockets; building
        them once and handing each transport the same bytes is what keeps
        fan-out cheap.  They come in pieces so that a part many frames
        share (a join ack's peer list) is written from where it is.  False
        when that cannot be done here (compression on, transport closing):
        the caller then queues the packets instead.  There is no drain: the
        caller bounds what it writes by :meth:`buffered_bytes`.
        """
        transport = self._transport()
        if self._sock.compress or transport is None:
            return False
        transport.writelines(frames)
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

    def write_frames(self, frames: list[bytes]) -> bool: ...

    def buffered_bytes(self) -> int: ...

    async def wait(self) -> str | bytes: ...

    async def close(self) -> None: ...


#: Seconds a long-polling POST has to deliver its whole body.
BODY_DEADLINE = 10.0


async def _read_body(environ: Environ, server: Any) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise eio_exceptions.EngineIOError("bad Content-Length") from None
    if length > server.max_http_buffer_size:
        raise eio_exceptions.ContentTooLongError("body over the message size limit")
    try:
        body: bytes = await asyncio.wait_for(
            environ["wsgi.input"].readexactly(length), BODY_DEADLINE
        )
    except (asyncio.IncompleteReadError, TimeoutError, aiohttp.ClientError, OSError):
        # Cut short, late, or the connection went away in the middle.
        raise eio_exceptions.EngineIOError("body incomplete") from None
    return body


def _size(pkt: eio_packet.Packet | None) -> int:
    """What a queued packet holds, in bytes (characters for text)."""
    data = pkt.data if pkt is not None else None
    return len(data) if isinstance(data, bytes | str) else 0


class Socket(async_socket.AsyncSocket):  # type: ignore[misc]
    """An Engine.IO session whose websocket loops cost no task per frame, and
    whose reading can be paused.

    python-engineio wraps every received frame in a new task plus a
    ``wait_for`` and every write batch in another; on a relay that carries
    thousands of frames per second that bookkeeping costs more than the
    relaying.  Sessions that upgrade from long-polling run the same loops once
    python-engineio's probe handshake is done.

    Reading is paused for relay flow control: the server stops reading from a
    client whose data waits for a full receiver, so TCP back-pressure reaches
    the sender (aiohttp stops reading the socket once its own small buffer is
    full).  A paused session is not timed out for heartbeats it could not
    read, and its heartbeat clock starts again when it resumes.
    """

    connected: bool
    upgraded: bool
    upgrading: bool
    closed: bool
    closing: bool
    last_ping: float | None

    #: The client's address, and whether it speaks Socket.IO v2 (set when it
    #: connects to the default namespace).
    remote = ""
    v2 = False
    #: Bytes (characters for text) queued for this client and not yet taken by
    #: its transport, including the batch being written: what a slow reader
    #: makes the server hold.
    queued_bytes = 0
    #: Everything this client's transport has taken so far: its progress.
    sent_bytes = 0
    #: The websocket while this session's own loops run it (see
    #: :meth:`write_frames`).
    _channel: FrameChannel | None = None
    #: Set once :meth:`drop` has scheduled the close.
    _dropped = False
    #: Set while reading is allowed; None until the first pause.
    _reading: asyncio.Event | None = None
    #: Keeps the client's heartbeat going while paused.
    _keepalive: asyncio.Task[None] | None = None
    #: python-engineio's wait for the next v4 ping.
    _ping_timer: asyncio.Task[None] | None = None
    #: Called once when the backlog falls to ``_low_water`` (see :meth:`on_drained`).
    _drained: Callable[[], None] | None = None
    #: Bytes of the batch the writer has handed to the transport and waits on.
    _in_flight = 0
    _low_water = 0
    _low_packets = 0

    def write_frames(self, frames: list[bytes]) -> bool:
        """Write whole websocket frames now, bypassing the send queue.

        Only when nothing is queued ahead of them, so the client sees frames
        in the order they were sent; False means the caller must queue the
        packets instead (long-polling, a busy queue).
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

    def backlog(self) -> int:
        """Everything waiting for this client: queued and in its transport
        (the batch being written is in both, and counted once)."""
        return self.queued_bytes - self._in_flight + self.buffered_bytes()

    async def send(self, pkt: eio_packet.Packet) -> None:
        self._queued(_size(pkt))
        await super().send(pkt)
        self._check_queue()

    def _put(self, pkt: eio_packet.Packet) -> None:
        self._queued(_size(pkt))
        self.queue.put_nowait(pkt)
        self._check_queue()

    def _queued(self, size: int) -> None:
        self.queued_bytes += size
        self.server.queued_bytes += size

    def drop(self) -> None:
        """Close the session on its own, without waiting for its queue."""
        if not (self._dropped or self.closing or self.closed):
            self._dropped = True
            server = self.server
            server.spawn(self.close(wait=False, abort=True, reason=server.reason.SERVER_DISCONNECT))

    def _check_queue(self) -> None:
        """Disconnect a client that has stopped reading: replies to its
        requests, pongs to its pings and anything else would otherwise
        queue without bound."""
        server = self.server
        if (
            self.queued_bytes > server.send_queue_bytes
            or self.queue.qsize() > server.send_queue_packets
        ) and not (self._dropped or self.closing or self.closed):
            server.send_queue_overflows += 1
            log.info(
                "closing %s from %s: it is not reading (%d packets, %d bytes waiting)",
                self.sid,
                self.remote,
                self.queue.qsize(),
                self.queued_bytes,
            )
            self.drop()

    def send_text(self, text: str) -> None:
        """Send one text message (an encoded Socket.IO packet) to an open
        session: the path of every event and ack the rendezvous sends but
        the join ack (:meth:`send_encoded`).

        Unlike :meth:`send` it does not check the heartbeat on every packet
        (the monitor does that for all sessions).
        """
        if self.closed or self.closing:
            return
        self._put(eio_packet.Packet(eio_packet.MESSAGE, text))

    def send_encoded(self, parts: list[bytes]) -> None:
        """Send one text message given as the UTF-8 pieces of its Socket.IO
        packet: a join ack, around the peer list the acks of a moment share.

        A large one is written at once, from those pieces, to an idle
        websocket, and held only as the bytes on their way out rather than
        as encoded copies waiting in the queue.  Small ones go through the
        queue: the writer sends all that a busy socket has queued with one
        system call.
        """
        if self.closed or self.closing:
            return
        size = sum(map(len, parts))
        if (
            size >= DIRECT_TEXT_MIN
            and (channel := self._direct_channel())
            and channel.write_frames([_frame_header(_TEXT, size + 1) + b"4", *parts])
        ):
            return
        self._put(eio_packet.Packet(eio_packet.MESSAGE, b"".join(parts).decode()))

    def send_binary(self, head: str, data: bytes) -> None:
        """Send a Socket.IO packet with one binary attachment (a relayed
        chunk): its text, then the attachment, as two messages."""
        if self.closed or self.closing:
            return
        self._put(eio_packet.Packet(eio_packet.MESSAGE, head))
        self._put(eio_packet.Packet(eio_packet.MESSAGE, data))

    def send_texts(self, texts: list[str]) -> None:
        """Queue several text messages (announcements that could not be
        written as frames at once)."""
        if self.closed or self.closing:
            return
        for text in texts:
            self._put(eio_packet.Packet(eio_packet.MESSAGE, text))

    def queued_packets(self) -> int:
        """Messages waiting in the send queue."""
        size: int = self.queue.qsize()
        return size

    def on_drained(self, low_water: int, low_packets: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when at most ``low_water`` bytes and
        ``low_packets`` packets wait for the client (or the session ends)."""
        self._low_water = low_water
        self._low_packets = low_packets
        self._drained = callback

    def _written(self, packets: list[eio_packet.Packet | None], size: int | None = None) -> None:
        if size is None:
            size = sum(_size(pkt) for pkt in packets)
        self._queued(-size)
        self.sent_bytes += size
        if (
            self._drained is not None
            and self.backlog() <= self._low_water
            and self.queue.qsize() <= self._low_packets
        ):
            self._call_drained()

    def _call_drained(self) -> None:
        callback, self._drained = self._drained, None
        if callback is not None:
            callback()

    # -- pausing -----------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._reading is not None and not self._reading.is_set()

    def pause(self) -> None:
        """Stop reading from this client until :meth:`resume`."""
        if self._reading is None:
            self._reading = asyncio.Event()
        self._reading.clear()
        if self._keepalive is None:
            self._keepalive = asyncio.get_running_loop().create_task(self._keep_alive())

    def resume(self) -> None:
        if self.paused:
            assert self._reading is not None
            self._reading.set()
            self._heartbeat_resumed()
        self._stop_keepalive()

    def schedule_ping(self) -> None:
        # As python-engineio does, keeping the task: its wait lasts a whole
        # ping interval even once the session is closed, so close() ends it
        # rather than leave one task per closed session for that long.
        if self.last_ping:
            self.last_ping = None
            self._ping_timer = asyncio.get_running_loop().create_task(self._send_ping())

    def _stop_keepalive(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None

    async def _keep_alive(self) -> None:
        """While paused, keep the client's own heartbeat timeout at bay: the
        answers it expects to its pings, or our pings, would otherwise stop
        (they wait for what is not read)."""
        while True:
            await asyncio.sleep(self.server.ping_interval)
            if self.closing or self.closed:
                return
            self._put(self._keepalive_packet())

    def _keepalive_packet(self) -> eio_packet.Packet:
        # An Engine.IO v4 client times out without the server's pings.
        return eio_packet.Packet(eio_packet.PING)

    def _heartbeat_resumed(self) -> None:
        # A ping sent while paused may be answered in what was not read yet:
        # give the client the whole timeout again.
        if self.last_ping:
            self.last_ping = time.time()

    async def _wait_resumed(self) -> None:
        if self._reading is not None:
            await self._reading.wait()

    async def check_ping_timeout(self) -> bool:
        if self.paused and not self.closed:
            return True
        result: bool = await super().check_ping_timeout()
        return result

    async def handle_post_request(self, environ: Environ) -> None:
        """A long-polling POST: the body read whole (python-engineio's single
        ``read(length)`` returns only what has arrived), then its packets,
        each waiting while reading is paused.

        A body that is too large, incomplete, late or malformed ends the
        session at once.  python-engineio would close it waiting for a poll
        to drain its queue, which a client that sent garbage never makes, so
        the request and its session would be held for good.
        """
        try:
            packets = self._decode_body(await _read_body(environ, self.server))
            for pkt in packets:
                await self._wait_resumed()
                await self.receive(pkt)
        except (eio_exceptions.EngineIOError, ValueError) as exc:
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR)
            raise eio_exceptions.EngineIOError(str(exc)) from exc
        except asyncio.CancelledError:
            # The client went away in the middle of its body.
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR)
            raise

    def _decode_body(self, body: bytes) -> list[eio_packet.Packet]:
        packets: list[eio_packet.Packet] = payload.Payload(
            encoded_payload=body.decode("utf-8")
        ).packets
        return packets

    # -- the session loops -----------------------------------------------------------

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
            if self._reading is not None:
                self._reading.set()
            self._stop_keepalive()
            if self._ping_timer is not None:
                self._ping_timer.cancel()
            self._call_drained()

    async def _websocket_handler(self, ws: FrameChannel) -> None:
        if self.connected:
            if not await self._upgrade(ws):
                return
        else:
            self.connected = True
        self.upgraded = True
        writer = asyncio.get_running_loop().create_task(self._write_loop(ws))
        self._channel = ws
        try:
            await self._read_loop(ws)
        finally:
            self._channel = None
            self.queue.put_nowait(None)  # ends the writer
            try:
                await writer
            finally:
                # Also when the client's going away cancelled this handler
                # while it waited for the writer: the session must still end,
                # and leave the server's table, which python-engineio does
                # only once this handler has returned.
                await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
                self.server.sockets.pop(self.sid, None)

    async def _upgrade(self, ws: FrameChannel) -> bool:
        """The polling-to-websocket probe, as python-engineio 4.15 does it:
        ``2probe`` answered ``3probe``, the poll ended with a NOOP, then
        ``5`` (UPGRADE).  True if the session now runs on ``ws``."""
        self.upgrading = True  # python-engineio holds packet sends meanwhile
        try:
            probe = await ws.wait()
            if probe != "2probe":
                log.info("%s: failed websocket upgrade, no probe", self.sid)
                return False
            await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
            await self.queue.put(eio_packet.Packet(eio_packet.NOOP))  # ends the poll
            if await ws.wait() != "5":
                log.info("%s: failed websocket upgrade, no UPGRADE packet", self.sid)
                return False
            return True
        except OSError:
            return False
        finally:
            self.upgrading = False

    async def _read_loop(self, ws: FrameChannel) -> None:
        # Messages go straight to the handler: python-engineio's dispatch
        # builds a packet object, two closures and an inspect call per frame,
        # and catches the handler's errors just as this loop does.
        on_message = self.server.handlers.get("message")
        while not self._dropped:
            if self._reading is not None and not self._reading.is_set():
                await self._reading.wait()
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
            if None in batch:
                running = False
                # Nothing after the end is sent.
                self._written(batch[batch.index(None) :])
                batch = batch[: batch.index(None)]
            if not batch:
                continue
            size = self._in_flight = sum(_size(pkt) for pkt in batch)
            try:
                await ws.send_many([pkt.encode() for pkt in batch])
            except Exception:  # a dead transport ends the session
                self._in_flight = 0
                self._written(batch, size)
                break
            self._in_flight = 0
            # Counted as queued until the transport has taken it (send_many
            # waits while the transport is over its high-water mark), so that
            # a stalled reader's batch in flight is not forgotten.
            self._written(batch, size)
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

    warned = False

    def translate_request(request: web.Request) -> Environ:
        nonlocal warned
        environ = translate(request)
        assert isinstance(environ, dict)  # the aiohttp driver is synchronous
        remote = request.remote or ""
        if trust_proxy:
            forwarded = request.headers.getall("X-Forwarded-For", [])
            if forwarded:
                # A header: whatever the client put there, made safe to log.
                remote = printable(forwarded[-1].rsplit(",", 1)[-1].strip(), 64) or remote
        elif not warned and (
            "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
        ):
            warned = True
            log.warning(
                "requests come through a proxy (X-Forwarded-For or Forwarded) but --trust-proxy "
                "is off: every client behind it is seen as %s and shares its per-address "
                "limits; start with --trust-proxy if the proxy is yours",
                remote,
            )
        environ["REMOTE_ADDR"] = remote
        return environ

    return translate_request
