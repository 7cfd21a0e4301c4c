"""Engine.IO v3 / Socket.IO v2 clients on python-engineio 4 / python-socketio 5.

Every deployed ``libp2p-websocket-star`` node speaks socket.io-client 2.x,
i.e. Engine.IO protocol 3, which python-engineio 4 refuses outright.  The JS
socket.io server solves this with ``allowEIO3``; this module is the same idea
for the Python stack, kept to the few places where the generations differ:

* the handshake: no ``maxPayload`` in the open packet, and the server connects
  the client to ``/`` itself and says so with a bare ``40``;
* the heartbeat runs the other way: the client pings, the server pongs, and the
  server gives up after ``pingInterval + pingTimeout`` of silence;
* binary frames and polling payloads are framed differently
  (:mod:`wsstar.wire.eio3` holds that framing as pure functions).

Everything else (packet encoding, acks, binary attachments, sessions) is
python-socketio's own code path, shared with Engine.IO v4 clients.  The hooks
used here are private methods of python-engineio 4.15, listed in
``compat.py``, which is why pyproject.toml pins that minor version.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import engineio
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

from wsstar.errors import ConfigError, ProtocolError
from wsstar.server.engineio.session import (
    Environ,
    FrameChannel,
    InvalidFrame,
    Socket,
    WebSocket,
    real_remote_address,
)
from wsstar.wire import eio3

#: Key set in the WSGI-style environ of requests from Engine.IO v3 clients.
EIO3 = "wsstar.eio3"
#: The client asked for binary as base64 text (``b64=1``).
EIO3_B64 = "wsstar.eio3.b64"


class Eio3WebSocket:
    """The v3 framing on top of a v4 websocket: python-engineio's receive and
    send loops run unchanged on either side of it."""

    def __init__(self, ws: FrameChannel, b64: bool) -> None:
        self._ws = ws
        self._b64 = b64

    async def send(self, message: str | bytes) -> None:
        await self._ws.send(eio3.websocket_frame(message, self._b64))

    async def send_many(self, messages: list[str | bytes]) -> None:
        await self._ws.send_many([eio3.websocket_frame(m, self._b64) for m in messages])

    def write_frames(self, frames: list[bytes]) -> bool:
        # Only text frames are ever pre-built, and v3 text is v4 text.
        return self._ws.write_frames(frames)

    def buffered_bytes(self) -> int:
        return self._ws.buffered_bytes()

    async def wait(self) -> str | bytes:
        try:
            return eio3.read_websocket_frame(await self._ws.wait())
        except ProtocolError as exc:
            raise InvalidFrame(str(exc)) from exc

    async def close(self) -> None:
        await self._ws.close()


# -- Engine.IO v3 sockets and server ------------------------------------------------


class Eio3Socket(Socket):
    """An Engine.IO session with a v3 client."""

    def __init__(self, server: DualEngineServer, sid: str, b64: bool) -> None:
        super().__init__(server, sid)
        self.b64 = b64
        self.last_client_ping = time.monotonic()
        self._content_type = ""

    async def receive(self, pkt: eio_packet.Packet) -> None:
        if pkt.packet_type == eio_packet.PING:
            self.last_client_ping = time.monotonic()
            await self.send(eio_packet.Packet(eio_packet.PONG, pkt.data))
        elif pkt.packet_type == eio_packet.PONG:
            # v3 servers never ping, so a pong is noise; engine.io ignores it too.
            return
        else:
            await super().receive(pkt)

    async def check_ping_timeout(self) -> bool:
        if self.closed:
            raise eio_exceptions.SocketIsClosedError()
        if self.paused:
            return True  # its pings wait, unread, behind what it relays
        limit = self.server.ping_interval + self.server.ping_timeout
        if time.monotonic() - self.last_client_ping > limit:
            self.server.logger.info("%s: v3 client stopped pinging, closing", self.sid)
            await self.close(wait=False, abort=False, reason=self.server.reason.PING_TIMEOUT)
            return False
        return True

    def schedule_ping(self) -> None:
        """The v3 client drives the heartbeat; the server never pings."""

    def _heartbeat_resumed(self) -> None:
        self.last_client_ping = time.monotonic()

    def _keepalive_packet(self) -> eio_packet.Packet:
        # engine.io-client 3 takes an unasked-for pong as the answer to its
        # ping (it clears its timeout and schedules the next ping).
        return eio_packet.Packet(eio_packet.PONG)

    async def handle_get_request(self, environ: Environ) -> Any:
        result = await super().handle_get_request(environ)
        if isinstance(result, list):
            return self.server.ok_v3(result)
        return result

    def _decode_body(self, body: bytes) -> list[eio_packet.Packet]:
        try:
            messages = eio3.decode_payload(body, self._content_type)
        except ProtocolError as exc:
            # Same outcome as a bad websocket frame: this session ends.
            raise eio_exceptions.EngineIOError(str(exc)) from exc
        return [
            eio_packet.Packet(eio_packet.MESSAGE, message)
            if isinstance(message, bytes)
            else eio_packet.Packet(encoded_packet=message)
            for message in messages
        ]

    async def handle_post_request(self, environ: Environ) -> None:
        self._content_type = environ.get("CONTENT_TYPE", "")
        await super().handle_post_request(environ)

    async def _websocket_handler(self, ws: FrameChannel) -> None:
        await super()._websocket_handler(Eio3WebSocket(ws, self.b64))


class DualEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio 4's server, also accepting ``EIO=3`` sessions."""

    def generate_id(self) -> str:
        session_id: str = super().generate_id()
        return self._session_prefix + session_id

    # Attributes of the (untyped) base class used here.
    _async: dict[str, Any]
    start_service_task: bool

    def __init__(
        self,
        *args: Any,
        websocket_compression: bool = False,
        trust_proxy: bool = False,
        send_queue_bytes: int,
        send_queue_packets: int,
        origin_refused: Callable[[str, str], None] | None = None,
        session_prefix: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        #: What every session id starts with: the worker that made it.
        self._session_prefix = session_prefix
        #: Told of each request python-engineio refuses for its Origin
        #: (client address, origin): its own report is one DEBUG line.
        self._origin_refused = origin_refused
        self.send_queue_bytes = send_queue_bytes
        self.send_queue_packets = send_queue_packets
        #: Clients disconnected for not reading what was sent to them.
        self.send_queue_overflows = 0
        #: Everything queued for every session, in bytes.
        self.queued_bytes = 0
        self._tasks: set[asyncio.Task[None]] = set()
        if self.cookie:
            # The session opening below is a copy of python-engineio's, which
            # sets this cookie; the copy does not, so it must not be asked to.
            raise ConfigError("the Engine.IO session cookie is not supported")
        self.websocket_compression = websocket_compression
        # _async is the driver module's global table; copy before changing it
        # so that other engine servers in the process are unaffected.
        self._async = dict(self._async)
        self._async["websocket"] = WebSocket
        translate = real_remote_address(self._async["translate_request"], trust_proxy)
        self._async["translate_request"] = self._report_bad_origin(self._mark_eio3(translate))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` on its own, keeping it referenced until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _report_bad_origin(self, translate: Any) -> Any:
        """The request translation, reporting each request whose origin
        python-engineio will refuse right after it, by the same test."""

        def translate_request(*args: Any, **kwargs: Any) -> Environ:
            environ: Environ = translate(*args, **kwargs)
            origin = environ.get("HTTP_ORIGIN")
            if origin and self._origin_refused is not None and self.cors_allowed_origins != []:
                allowed = self._cors_allowed_origins(environ)
                if allowed is not None and origin not in allowed:
                    self._origin_refused(str(environ.get("REMOTE_ADDR", "")), str(origin))
            return environ

        return translate_request

    @staticmethod
    def _mark_eio3(translate: Any) -> Any:
        def translate_request(*args: Any, **kwargs: Any) -> Environ:
            environ: Environ = translate(*args, **kwargs)
            v3 = eio3.v3_query(environ.get("QUERY_STRING", ""))
            if v3 is not None:
                # From here on v3 requests are told apart by the environ keys.
                environ["QUERY_STRING"], environ[EIO3_B64] = v3
                environ[EIO3] = True
            return environ

        return translate_request

    def ok_v3(self, packets: list[eio_packet.Packet]) -> dict[str, Any]:
        return {
            "status": "200 OK",
            "headers": [("Content-Type", "text/plain; charset=UTF-8")],
            "response": eio3.encode_payload(
                [pkt.data if pkt.binary else pkt.encode() for pkt in packets]
            ),
        }

    async def _handle_connect(
        self, environ: Environ, transport: str, jsonp_index: int | None = None
    ) -> Any:
        """Open a session of either generation.

        A copy of python-engineio 4.15's version, which only knows v4 and its
        own socket class; this one differs in the socket class, the v3 open
        packet (no maxPayload, no server-side ping), the v3 polling framing
        and a quiet end for a client that leaves during the upgrade.  The
        session cookie it would set is refused at start-up instead.
        """
        if self.start_service_task:
            self.start_service_task = False
            self.service_task_handle = self.start_background_task(self._service_task)
        sid = self.generate_id()
        v3 = bool(environ.get(EIO3))
        sock: Socket = (
            Eio3Socket(self, sid, b64=bool(environ.get(EIO3_B64))) if v3 else Socket(self, sid)
        )
        self.sockets[sid] = sock
        handshake: dict[str, Any] = {
            "sid": sid,
            "upgrades": self._upgrades(sid, transport),
            "pingTimeout": int(self.ping_timeout * 1000),
            # Upstream rounds the seconds down before scaling, which turns a
            # sub-second interval into 0; scaling first keeps it.
            "pingInterval": int((self.ping_interval + self.ping_interval_grace_period) * 1000),
        }
        if not v3:
            handshake["maxPayload"] = self.max_http_buffer_size
        await sock.send(eio_packet.Packet(eio_packet.OPEN, handshake))
        accepted = await self._trigger_event("connect", sid, environ, run_async=False)
        if accepted is not None and accepted is not True:
            del self.sockets[sid]
            return self._unauthorized(accepted or None)
        sock.schedule_ping()
        if transport == "websocket":
            try:
                response = await sock.handle_get_request(environ)
            except ConnectionResetError:
                # The client gave up during the upgrade: nothing to answer,
                # and nothing worth a traceback in the log.
                await sock.close(wait=False, abort=True)
                self.sockets.pop(sid, None)
                return self._bad_request("connection closed during the upgrade")
            if sock.closed and sid in self.sockets:
                del self.sockets[sid]
            return response
        sock.connected = True
        try:
            packets = await sock.poll()
        except eio_exceptions.QueueEmpty:
            return self._bad_request()
        return self.ok_v3(packets) if v3 else self._ok(packets, jsonp_index=jsonp_index)
