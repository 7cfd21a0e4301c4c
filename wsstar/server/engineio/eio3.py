"""Engine.IO v3 / Socket.IO v2 clients on python-engineio 4 / python-socketio 5.

Every deployed ``libp2p-websocket-star`` node speaks socket.io-client 2.x,
i.e. Engine.IO protocol 3, which python-engineio 4 refuses outright.  The JS
socket.io server solves this with ``allowEIO3``; this module is the same idea
for the Python stack, kept to the few places where the generations differ:

* the handshake: no ``maxPayload`` in the open packet, and the server connects
  the client to ``/`` itself and says so with a bare ``40``;
* the heartbeat runs the other way: the client pings, the server pongs, and the
  server gives up after ``pingInterval + pingTimeout`` of silence;
* binary websocket frames carry a leading ``0x04`` type byte (or, for clients
  that asked for ``b64=1``, travel as text ``b4<base64>``);
* long-polling payloads are ``<length>:<packet>`` with lengths in UTF-16 code
  units, or the XHR2 binary form;
* a refused namespace is an ERROR packet carrying a plain string.

Everything else (packet encoding, acks, binary attachments, sessions) is
python-socketio's own code path, shared with Engine.IO v4 clients.  The hooks
used here are private methods of python-engineio 4.15 / python-socketio 5.18,
which is why pyproject.toml pins those minor versions.
"""

from __future__ import annotations

import base64
import binascii
import time
import urllib.parse
from typing import Any

import engineio
import socketio
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from wsstar.errors import ProtocolError
from wsstar.server.engineio.session import (
    Environ,
    FrameChannel,
    InvalidFrame,
    Socket,
    WebSocket,
    real_remote_address,
)

#: Key set in the WSGI-style environ of requests from Engine.IO v3 clients.
EIO3 = "wsstar.eio3"
#: The client asked for binary as base64 text (``b64=1``).
EIO3_B64 = "wsstar.eio3.b64"


# -- Engine.IO v3 framing ----------------------------------------------------------


def utf16_length(text: str) -> int:
    """Length as JavaScript counts it, which is what v3 payload headers use."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def encode_packet(pkt: eio_packet.Packet) -> str:
    """One packet as v3 text: binary becomes ``b4<base64>``."""
    if pkt.binary:
        return "b4" + base64.b64encode(pkt.data).decode("ascii")
    encoded: str = pkt.encode()
    return encoded


def encode_payload(packets: list[eio_packet.Packet]) -> bytes:
    """A polling response body.  Always the text form: v3 clients choose their
    decoder from the Content-Type, so text works for binary-capable ones too."""
    parts = []
    for pkt in packets:
        text = encode_packet(pkt)
        parts.append(f"{utf16_length(text)}:{text}")
    return "".join(parts).encode()


def decode_packet(text: str) -> eio_packet.Packet:
    if text.startswith("b4"):
        try:
            return eio_packet.Packet(eio_packet.MESSAGE, base64.b64decode(text[2:], validate=True))
        except binascii.Error as exc:
            raise ProtocolError("invalid base64 packet") from exc
    if not text or text[0] not in "0123456":
        raise ProtocolError(f"invalid packet {text[:20]!r}")
    return eio_packet.Packet(encoded_packet=text)


def _split_text_payload(body: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(body):
        colon = body.find(":", i)
        if colon <= i or colon - i > 9 or not body[i:colon].isdigit():
            raise ProtocolError("invalid payload length")
        want = int(body[i:colon])
        start = end = colon + 1
        units = 0
        while units < want and end < len(body):
            units += 2 if ord(body[end]) > 0xFFFF else 1
            end += 1
        if units != want or want == 0:
            raise ProtocolError("payload length does not match its data")
        out.append(body[start:end])
        i = end
    return out


def _split_binary_payload(body: bytes) -> list[str | bytes]:
    # XHR2 form: <0 text|1 binary> <length as digit bytes> 0xFF <data>.
    out: list[str | bytes] = []
    i = 0
    while i < len(body):
        kind = body[i]
        end_of_length = body.find(b"\xff", i + 1)
        digits = body[i + 1 : end_of_length]
        if kind not in (0, 1) or end_of_length < 0 or not 0 < len(digits) <= 9:
            raise ProtocolError("invalid binary payload header")
        if any(d > 9 for d in digits):
            raise ProtocolError("invalid binary payload length")
        length = int("".join(str(d) for d in digits))
        data = body[end_of_length + 1 : end_of_length + 1 + length]
        if len(data) != length:
            raise ProtocolError("binary payload is truncated")
        if kind == 0:
            out.append(data.decode("utf-8", errors="strict"))
        else:
            out.append(data)
        i = end_of_length + 1 + length
    return out


def decode_payload(body: bytes, content_type: str) -> list[eio_packet.Packet]:
    """A polling POST body from a v3 client, as packets."""
    try:
        if content_type.startswith("application/octet-stream"):
            parts = _split_binary_payload(body)
        else:
            parts = list(_split_text_payload(body.decode("utf-8")))
    except UnicodeDecodeError as exc:
        raise ProtocolError("payload is not UTF-8") from exc
    packets = []
    for part in parts:
        if isinstance(part, bytes):
            if not part or part[0] != eio_packet.MESSAGE:
                raise ProtocolError("binary packet is not a message")
            packets.append(eio_packet.Packet(eio_packet.MESSAGE, part[1:]))
        else:
            packets.append(decode_packet(part))
    return packets


class Eio3WebSocket:
    """The v3 framing on top of a v4 websocket: python-engineio's receive and
    send loops run unchanged on either side of it."""

    def __init__(self, ws: FrameChannel, b64: bool) -> None:
        self._ws = ws
        self._b64 = b64

    def _frame(self, message: str | bytes) -> str | bytes:
        if isinstance(message, str):
            return message
        if self._b64:
            return "b4" + base64.b64encode(message).decode("ascii")
        return b"\x04" + message

    async def send(self, message: str | bytes) -> None:
        await self._ws.send(self._frame(message))

    async def send_many(self, messages: list[str | bytes]) -> None:
        await self._ws.send_many([self._frame(m) for m in messages])

    def write_frames(self, frames: bytes) -> bool:
        # Only text frames are ever pre-built, and v3 text is v4 text.
        return self._ws.write_frames(frames)

    def buffered_bytes(self) -> int:
        return self._ws.buffered_bytes()

    async def wait(self) -> str | bytes:
        data = await self._ws.wait()
        if isinstance(data, bytes):
            if not data or data[0] != eio_packet.MESSAGE:
                raise InvalidFrame("binary frame without the message type byte")
            return data[1:]
        if data.startswith("b4"):
            try:
                return base64.b64decode(data[2:], validate=True)
            except binascii.Error as exc:
                raise InvalidFrame("invalid base64 frame") from exc
        return data

    async def close(self) -> None:
        await self._ws.close()


# -- Engine.IO v3 sockets and server ------------------------------------------------


class Eio3Socket(Socket):
    """An Engine.IO session with a v3 client."""

    def __init__(self, server: DualEngineServer, sid: str, b64: bool) -> None:
        super().__init__(server, sid)
        self.b64 = b64
        self.last_client_ping = time.monotonic()

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
        limit = self.server.ping_interval + self.server.ping_timeout
        if time.monotonic() - self.last_client_ping > limit:
            self.server.logger.info("%s: v3 client stopped pinging, closing", self.sid)
            await self.close(wait=False, abort=False, reason=self.server.reason.PING_TIMEOUT)
            return False
        return True

    def schedule_ping(self) -> None:
        """The v3 client drives the heartbeat; the server never pings."""

    async def handle_get_request(self, environ: Environ) -> Any:
        result = await super().handle_get_request(environ)
        if isinstance(result, list):
            return self.server.ok_v3(result)
        return result

    async def handle_post_request(self, environ: Environ) -> None:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > self.server.max_http_buffer_size:
            raise eio_exceptions.ContentTooLongError()
        body = await environ["wsgi.input"].read(length)
        try:
            packets = decode_payload(body, environ.get("CONTENT_TYPE", ""))
        except ProtocolError as exc:
            # Same outcome as a bad websocket frame: this session ends.
            raise eio_exceptions.EngineIOError(str(exc)) from exc
        for pkt in packets:
            await self.receive(pkt)

    async def _websocket_handler(self, ws: FrameChannel) -> None:
        await super()._websocket_handler(Eio3WebSocket(ws, self.b64))


class DualEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio 4's server, also accepting ``EIO=3`` sessions."""

    # Attributes of the (untyped) base class used here.
    _async: dict[str, Any]
    start_service_task: bool

    def __init__(
        self,
        *args: Any,
        websocket_compression: bool = False,
        trust_proxy: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.websocket_compression = websocket_compression
        # _async is the driver module's global table; copy before changing it
        # so that other engine servers in the process are unaffected.
        self._async = dict(self._async)
        self._async["websocket"] = WebSocket
        translate = real_remote_address(self._async["translate_request"], trust_proxy)
        self._async["translate_request"] = self._mark_eio3(translate)

    @staticmethod
    def _mark_eio3(translate: Any) -> Any:
        def translate_request(*args: Any, **kwargs: Any) -> Environ:
            environ: Environ = translate(*args, **kwargs)
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            if query.get("EIO") == ["3"]:
                # python-engineio refuses anything but EIO=4 before looking at
                # the session; v3 requests pass that check under the v4 name and
                # are told apart by the environ keys from here on.
                environ[EIO3] = True
                environ[EIO3_B64] = query.get("b64", [""])[0] in ("1", "true")
                query["EIO"] = ["4"]
                environ["QUERY_STRING"] = urllib.parse.urlencode(query, doseq=True)
            return environ

        return translate_request

    def ok_v3(self, packets: list[eio_packet.Packet]) -> dict[str, Any]:
        return {
            "status": "200 OK",
            "headers": [("Content-Type", "text/plain; charset=UTF-8")],
            "response": encode_payload(packets),
        }

    async def _handle_connect(
        self, environ: Environ, transport: str, jsonp_index: int | None = None
    ) -> Any:
        """Open a session of either generation.

        python-engineio's version only knows v4 and its own socket class; this
        one differs in the socket class, the v3 open packet (no maxPayload, no
        server-side ping) and the v3 polling framing.
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
            "pingInterval": int(self.ping_interval * 1000),
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


# -- Socket.IO v2 on top -------------------------------------------------------------


class DualSocketIOServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio 5's server, also serving Socket.IO v2 (over Engine.IO v3)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._v2: set[str] = set()

    def _engineio_server_class(self) -> type[DualEngineServer]:
        return DualEngineServer

    def is_v2(self, eio_sid: str) -> bool:
        return eio_sid in self._v2

    async def _handle_eio_connect(self, eio_sid: str, environ: Environ) -> Any:
        await super()._handle_eio_connect(eio_sid, environ)
        if environ.get(EIO3):
            self._v2.add(eio_sid)
            # A v2 client never sends CONNECT for "/": the server connects it
            # and it waits for our bare "40" before firing 'connect'.
            await self._handle_connect(eio_sid, "/", None)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: str) -> None:
        await super()._handle_eio_disconnect(eio_sid, reason)
        self._v2.discard(eio_sid)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        if eio_sid in self._v2 and self.manager.sid_from_eio_sid(eio_sid, namespace or "/"):
            return  # already connected implicitly; a second CONNECT changes nothing
        await super()._handle_connect(eio_sid, namespace, data)

    async def _send_packet(self, eio_sid: str, pkt: sio_packet.Packet) -> None:
        if eio_sid in self._v2:
            if pkt.packet_type == sio_packet.CONNECT:
                pkt = self.packet_class(sio_packet.CONNECT, namespace=pkt.namespace)
            elif pkt.packet_type == sio_packet.CONNECT_ERROR:
                # v2 calls this type ERROR and its payload is a plain string.
                message = pkt.data.get("message") if isinstance(pkt.data, dict) else pkt.data
                pkt = self.packet_class(
                    sio_packet.CONNECT_ERROR, data=str(message), namespace=pkt.namespace
                )
        await super()._send_packet(eio_sid, pkt)
