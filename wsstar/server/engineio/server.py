"""The Socket.IO server: python-socketio 5 for both protocol generations,
with the fast paths of a rendezvous server, handing everything to a
:class:`Handler`.

The handler (the rendezvous service) never sees python-socketio: it gets a
socket id and a :class:`Session` per connection, and every event, ack and
relayed chunk as plain values.  python-socketio's handler dispatch is bypassed
for the default namespace: the service must know whether a request carried an
ack id (the reference ignores ``ss-join``/``ss-dial`` without one), it answers
dials later than a handler returns, and relayed chunks must keep their order,
which per-event handler tasks would not guarantee.  Events and acks without
binary data are read as text (:mod:`wsstar.wire.codec`) rather than as
python-socketio packet objects: that was most of a dial's cost.  Server-to-
client acks (``ss-incomming``) use the handler's own ack ids, not
python-socketio's callbacks, so that an answer can be routed like any other
message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NewType, Protocol

import socketio
from socketio import packet as sio_packet

from wsstar.directory import SocketId
from wsstar.server.engineio.eio3 import EIO3, DualEngineServer
from wsstar.server.engineio.session import Environ, Socket
from wsstar.wire import codec
from wsstar.wire.reasons import shorten

log = logging.getLogger("wsstar")


class _ClientErrorsAtDebug(logging.Filter):
    """python-engineio and python-socketio log what a client did wrong (a
    dead session id, a bad transport or origin) at ERROR, in their own
    words, once per kind and then per request.  The service says what
    matters in its own lines; theirs become DEBUG.  Their tracebacks of
    real failures stay errors.  A refused origin is dropped: the service
    logs and counts it (``origin_refused``), and twice would be noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is None and "is not an accepted origin" in str(record.msg):
            return False
        if record.exc_info is None and record.levelno >= logging.WARNING:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= log.getEffectiveLevel()


def _library_logger(name: str) -> logging.Logger:
    # A logger of ours rather than the libraries' defaults, which print on a
    # handler of their own; WARNING keeps their per-packet INFO calls cheap.
    logger = logging.getLogger(f"wsstar.{name}")
    logger.setLevel(logging.WARNING)
    if not logger.filters:
        logger.addFilter(_ClientErrorsAtDebug())
    return logger


#: An Engine.IO session id (one per connection, whatever its namespaces).
EngineId = NewType("EngineId", str)

#: socket.io-parser's own limit on binary attachments per packet.
MAX_ATTACHMENTS = 10


class Session(Protocol):
    """What the service may do with one connected client."""

    #: The client's address (the proxy's, unless the proxy is trusted).
    remote: str
    #: Whether the client speaks Socket.IO v2 over Engine.IO v3.
    v2: bool
    #: What the client's transport has taken so far, in bytes: its progress.
    sent_bytes: int

    def send_text(self, text: str) -> None:
        """Send one Socket.IO packet written as text."""

    def send_encoded(self, parts: list[bytes]) -> None:
        """Send one Socket.IO packet written as text, in UTF-8 pieces."""

    def send_binary(self, head: str, data: bytes) -> None:
        """Send a Socket.IO packet with one binary attachment."""

    def send_texts(self, texts: list[str]) -> None:
        """Queue several text packets."""

    def write_frames(self, frames: list[bytes]) -> bool:
        """Write pre-built websocket text frames now, if nothing is queued
        ahead of them; False when they must be queued as packets instead."""

    def queued_packets(self) -> int:
        """Packets waiting in the send queue."""

    def buffered_bytes(self) -> int:
        """Bytes handed to the transport and not yet taken by the client."""

    def backlog(self) -> int:
        """Everything waiting for the client, queued or in its transport, in bytes."""

    def on_drained(self, low_water: int, low_packets: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when at most ``low_water`` bytes and
        ``low_packets`` packets wait for the client (or it is gone)."""

    def drop(self) -> None:
        """Close the connection, without waiting for anything queued."""

    def pause(self) -> None:
        """Stop reading from the client (relay flow control)."""

    def resume(self) -> None:
        """Read from the client again."""


class Handler(Protocol):
    """The service behind the Socket.IO server."""

    def admit(self, remote: str) -> bool:
        """Whether a new connection from ``remote`` may open a session."""

    def released(self, remote: str) -> None:
        """A session :meth:`admit` allowed has ended."""

    def origin_refused(self, remote: str, origin: str) -> None:
        """A request from ``remote`` is refused for its Origin header."""

    async def connected(self, sid: SocketId, session: Session) -> None:
        """A client connected to the default namespace."""

    async def disconnected(self, sid: SocketId, reason: str) -> None:
        """A client is gone."""

    async def event(
        self, sid: SocketId, event: str | None, args: tuple[Any, ...], ack_id: int | None
    ) -> None:
        """An event; ``event`` is None when the packet named none."""

    async def ack(self, sid: SocketId, ack_id: int, args: tuple[Any, ...]) -> None:
        """The client answered an event the handler sent with ``ack_id``."""

    async def chunk(self, sid: SocketId, stream: str, head: str, data: bytes) -> None:
        """A relayed chunk in its usual form: ``head`` is its packet text as
        received, ``data`` its attachment."""


class _Manager(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's in-process client manager, with O(1) disconnects.

    The stock one scans every room of the namespace on each disconnect, and
    every socket has a room of its own, so churn on a large swarm cost
    O(sockets) per departure.  This copy of python-socketio 5.18's
    ``basic_disconnect`` leaves out only that scan: wsstar never uses rooms,
    so a socket is only ever in its own room and the default one.
    """

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        rooms = self.rooms.get(namespace)
        if rooms is None:
            return
        for room in (sid, None):
            if room in rooms and sid in rooms[room]:
                self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio 5's server, also serving Socket.IO v2 (over Engine.IO v3)."""

    def __init__(self, handler: Handler, **kwargs: Any) -> None:
        super().__init__(
            client_manager=_Manager(),
            async_mode="aiohttp",
            # The service logs what matters itself; python-socketio's own
            # per-packet logging would dominate the CPU profile.
            logger=_library_logger("socketio"),
            engineio_logger=_library_logger("engineio"),
            origin_refused=handler.origin_refused,
            **kwargs,
        )
        self._handler = handler
        self._v2: set[EngineId] = set()
        # Relay chunk headers waiting for their attachment, by engine session.
        self._chunk_heads: dict[EngineId, tuple[str, str]] = {}
        #: The client address of each session admitted, to release it once.
        self._admitted: dict[EngineId, str] = {}
        self.on("connect", self._on_connect)
        self.on("disconnect", self._on_disconnect)

    def _engineio_server_class(self) -> type[DualEngineServer]:
        return DualEngineServer

    async def close_all(self) -> None:
        """Close every session without waiting for its queue to drain.

        python-engineio's own disconnect-all waits until every socket's queue
        is drained, which a long-polling client that stopped polling never
        does; close without waiting and end each writer explicitly instead.
        """
        eio = self.eio
        for sock in list(eio.sockets.values()):
            await sock.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
            sock.queue.put_nowait(None)
        eio.sockets.clear()

    @property
    def queued_bytes(self) -> int:
        """Everything queued for every client and not yet taken by its transport."""
        total: int = self.eio.queued_bytes
        return total

    @property
    def send_queue_overflows(self) -> int:
        """Clients disconnected because they stopped reading."""
        count: int = self.eio.send_queue_overflows
        return count

    # -- connections ------------------------------------------------------------

    async def _handle_eio_connect(self, eio_sid: str, environ: Environ) -> Any:
        remote = environ.get("REMOTE_ADDR", "")
        if not self._handler.admit(remote):
            # python-engineio answers a refused connect with HTTP 401 before
            # any upgrade: the client sees a failed connection, nothing more.
            return False
        self._admitted[EngineId(eio_sid)] = remote
        await super()._handle_eio_connect(eio_sid, environ)
        if environ.get(EIO3):
            self._v2.add(EngineId(eio_sid))
            # A v2 client never sends CONNECT for "/": the server connects it
            # and it waits for our bare "40" before firing 'connect'.
            await self._handle_connect(eio_sid, "/", None)
        return None

    async def _on_connect(self, sid: str, environ: Environ, auth: Any = None) -> None:
        eio_sid = self.manager.eio_sid_from_sid(sid, "/")
        sock: Socket | None = self.eio.sockets.get(eio_sid)
        if sock is None:
            return
        sock.remote = environ.get("REMOTE_ADDR", "")
        sock.v2 = EngineId(eio_sid) in self._v2
        await self._handler.connected(SocketId(sid), sock)

    async def _on_disconnect(self, sid: str, reason: str = "") -> None:
        await self._handler.disconnected(SocketId(sid), reason)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: str) -> None:
        engine_id = EngineId(eio_sid)
        self._chunk_heads.pop(engine_id, None)
        await super()._handle_eio_disconnect(eio_sid, reason)
        self._v2.discard(engine_id)
        remote = self._admitted.pop(engine_id, None)
        if remote is not None:
            self._handler.released(remote)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        if EngineId(eio_sid) in self._v2 and self.manager.sid_from_eio_sid(
            eio_sid, namespace or "/"
        ):
            return  # already connected implicitly; a second CONNECT changes nothing
        await super()._handle_connect(eio_sid, namespace, data)

    async def _send_packet(self, eio_sid: str, pkt: sio_packet.Packet) -> None:
        if EngineId(eio_sid) in self._v2:
            if pkt.packet_type == sio_packet.CONNECT:
                pkt = self.packet_class(sio_packet.CONNECT, namespace=pkt.namespace)
            elif pkt.packet_type == sio_packet.CONNECT_ERROR:
                # v2 calls this type ERROR and its payload is a plain string.
                message = pkt.data.get("message") if isinstance(pkt.data, dict) else pkt.data
                pkt = self.packet_class(
                    sio_packet.CONNECT_ERROR, data=str(message), namespace=pkt.namespace
                )
        await super()._send_packet(eio_sid, pkt)

    # -- messages -----------------------------------------------------------------

    def _sid(self, eio_sid: str, namespace: str | None) -> SocketId | None:
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace or "/")
        if sid is None or not self.manager.is_connected(sid, namespace or "/"):
            return None
        return SocketId(sid)

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, ack_id: int | None, data: Any
    ) -> None:
        sid = self._sid(eio_sid, namespace)
        if sid is None:
            return
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            await self._handler.event(sid, None, (), ack_id)
            return
        await self._handler.event(sid, data[0], tuple(data[1:]), ack_id)

    async def _handle_ack(
        self, eio_sid: str, namespace: str | None, ack_id: int | None, data: Any
    ) -> None:
        sid = self._sid(eio_sid, namespace)
        if sid is None or ack_id is None:
            return
        await self._handler.ack(sid, ack_id, tuple(data) if isinstance(data, list) else ())

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        engine_id = EngineId(eio_sid)
        if isinstance(data, bytes):
            head = self._chunk_heads.pop(engine_id, None)
            if head is not None:
                sid = self.manager.sid_from_eio_sid(eio_sid, "/")
                if sid is not None:
                    await self._handler.chunk(SocketId(sid), head[1], head[0], data)
                return
        elif eio_sid not in self._binary_packet and engine_id not in self._chunk_heads:
            stream = codec.chunk_stream(data)
            if stream is not None:
                self._chunk_heads[engine_id] = (data, stream)
                return
        try:
            if isinstance(data, str) and eio_sid not in self._binary_packet:
                decoded = codec.decode(data)
                if decoded is not None:
                    packet_type, ack_id, payload = decoded
                    if packet_type == codec.EVENT:
                        await self._handle_event(eio_sid, "/", ack_id, payload)
                    else:
                        await self._handle_ack(eio_sid, "/", ack_id, payload)
                    return
            await super()._handle_eio_message(eio_sid, data)
            pending = self._binary_packet.get(eio_sid)
            if pending is not None and pending.attachment_count > MAX_ATTACHMENTS:
                raise ValueError("too many binary attachments")
        except Exception as exc:
            self._binary_packet.pop(eio_sid, None)
            log.info("closing %s: malformed Socket.IO packet (%s)", eio_sid, shorten(str(exc), 80))
            sock: Socket | None = self.eio.sockets.get(eio_sid)
            if sock is not None:
                # Not python-engineio's disconnect: it waits for the queue to
                # drain, which a polling client that sent garbage never does
                # (and here the wait would hold its POST too).
                await sock.close(wait=False, abort=True, reason=self.reason.SERVER_DISCONNECT)
