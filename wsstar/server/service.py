"""Socket.IO wiring: decode requests, call the rules, put effects on the wire.

This is the only module that connects :class:`~wsstar.rendezvous.Rendezvous`
to sockets.  It deliberately bypasses python-socketio's handler dispatch for
the application events: the rules need to know whether a request carried an
ack id (the reference ignores ``ss-join``/``ss-dial`` without one), the dial
ack is sent later than the handler returns, and relayed chunks must keep their
order, which per-event handler tasks would not guarantee.  Events and acks
without binary data are also read and written as text here (``codec.py``)
rather than as python-socketio packet objects: that was most of a dial's cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

import socketio
from engineio import packet as eio_packet

from wsstar import errors
from wsstar.directory import LocalDirectory, PeerDirectory
from wsstar.identity.addresses import is_multiaddr
from wsstar.identity.allowlist import load_allowed_peers
from wsstar.server.admission import (
    DIAL_RATE_LIMITED,
    EVENT_RATE_LIMITED,
    JOIN_RATE_LIMITED,
    Admission,
)
from wsstar.server.config import ServerConfig
from wsstar.server.engineio.eio3 import DualSocketIOServer
from wsstar.server.engineio.session import Socket
from wsstar.server.fanout import AnnouncementFanout
from wsstar.star.effects import Announce, AnswerDial, AskIncoming, DialKey, Effect, Emit
from wsstar.star.relay import PREFIX as STREAM_PREFIX
from wsstar.star.relay import QUEUE as STREAM_QUEUE
from wsstar.star.rendezvous import Rendezvous
from wsstar.wire import codec

log = logging.getLogger("wsstar")

#: Longest address accepted; real ones are well under 300 characters.
MAX_ADDRESS_LENGTH = 1024
#: Longest hex public key or signature accepted (RSA-8192 keys are ~2.1 KB of hex).
MAX_CHALLENGE_DATA_LENGTH = 8192
MAX_DIAL_ID_LENGTH = 256
#: socket.io-parser's own limit on binary attachments per packet.
MAX_ATTACHMENTS = 10
#: Seconds between sweeps of idle per-address limit state.
SWEEP_INTERVAL = 30.0

# A relayed chunk as every socket.io client encodes it: a binary event with one
# attachment, no ack id, namespace "/".  Recognised by its text alone so that
# the bulk of a busy server's traffic skips JSON and handler dispatch.
_CHUNK_HEAD = '51-["' + STREAM_QUEUE
_CHUNK_TAIL = '",{"_placeholder":true,"num":0}]'


def _short(value: object, limit: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class _Ack:
    """Where an ack for one request goes: a socket and the ack id it chose."""

    __slots__ = ("eio_sid", "id")

    def __init__(self, eio_sid: str, ack_id: int) -> None:
        self.eio_sid = eio_sid
        self.id = ack_id


class _Manager(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's in-process client manager, with O(1) disconnects.

    The stock one scans every room of the namespace on each disconnect, and
    every socket has a room of its own, so churn on a large swarm cost
    O(sockets) per departure.  wsstar never uses other rooms: a socket is only
    ever in its own room and the default one.
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


class SocketServer(DualSocketIOServer):
    """The Socket.IO server, handing every event on ``/`` to the service."""

    def __init__(self, service: RendezvousService, **kwargs: Any) -> None:
        super().__init__(client_manager=_Manager(), **kwargs)
        self.service = service
        # Relay chunk headers waiting for their attachment, by engine session.
        self._chunk_heads: dict[str, tuple[str, str]] = {}
        self._client_ip: dict[str, str] = {}

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        ip = environ.get("REMOTE_ADDR", "")
        refused = self.service.admission.connect(ip)
        if refused is not None:
            # python-engineio answers a refused connect with HTTP 401 before
            # any upgrade: the client sees a failed connection, nothing more.
            log.info("connection from %s refused: %s limit reached", ip, refused.replace("_", " "))
            return False
        self._client_ip[eio_sid] = ip
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, ack_id: int | None, data: Any
    ) -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace or "/")
        if sid is None or not self.manager.is_connected(sid, namespace or "/"):
            return
        ack = _Ack(eio_sid, ack_id) if ack_id is not None else None
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            # socket.io-parser rejects these outright; answering is kinder, but
            # each answer is a send, so they count against the event limit
            # like any other control event.
            allowed = self.service.admission.allow_event(sid)
            if ack is not None:
                reply = errors.EVENT_NAME_MISSING if allowed else EVENT_RATE_LIMITED
                await self.service.send_ack(ack, (reply,))
            return
        await self.service.on_event(sid, data[0], tuple(data[1:]), ack)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: str) -> None:
        self._chunk_heads.pop(eio_sid, None)
        await super()._handle_eio_disconnect(eio_sid, reason)
        ip = self._client_ip.pop(eio_sid, None)
        if ip is not None:
            self.service.admission.disconnect(ip)

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        if isinstance(data, bytes):
            head = self._chunk_heads.pop(eio_sid, None)
            if head is not None:
                await self.service.relay_chunk(eio_sid, head[0], head[1], data)
                return
        elif (
            data.startswith(_CHUNK_HEAD)
            and data.endswith(_CHUNK_TAIL)
            and eio_sid not in self._binary_packet
            and eio_sid not in self._chunk_heads
        ):
            name = data[len(_CHUNK_HEAD) : -len(_CHUNK_TAIL)]
            if name and '"' not in name and "\\" not in name:
                self._chunk_heads[eio_sid] = (data, name)
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
            log.info("closing %s: malformed Socket.IO packet (%s)", eio_sid, _short(str(exc)))
            await self.eio.disconnect(eio_sid)


class RendezvousService:
    """One rendezvous server: the rules, their socket plumbing and the timers."""

    def __init__(self, config: ServerConfig, directory: PeerDirectory | None = None) -> None:
        self.config = config
        self.started = time.time()
        self.admission = Admission(config.limits, time.monotonic)
        self.core = Rendezvous(
            directory if directory is not None else LocalDirectory(),
            config.rules,
            announce_interval=config.announce_interval,
            announce_budget=config.announce_budget,
            clock=time.monotonic,
        )
        self.sio = SocketServer(
            self,
            async_mode="aiohttp",
            cors_allowed_origins=list(config.cors_origins)
            if config.cors_origins != ("*",)
            else "*",
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            max_http_buffer_size=config.max_message_size,
            websocket_compression=config.websocket_compression,
            trust_proxy=config.trust_proxy,
            # The rendezvous logs what matters itself; python-socketio's own
            # per-packet logging would dominate the CPU profile.
            logger=False,
            engineio_logger=False,
        )
        if config.allow_peers_file:
            self.core.allowed_peers = load_allowed_peers(config.allow_peers_file)
            log.info("private swarm: %d peer ids allowed", len(self.core.allowed_peers))
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self._eio_sid: dict[str, str] = {}
        self._remote: dict[str, str] = {}
        self._dial_acks: dict[DialKey, _Ack] = {}
        self._dial_timers: dict[DialKey, asyncio.TimerHandle] = {}
        self._incoming_ack: dict[DialKey, tuple[str, int]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self.fanout = AnnouncementFanout(self.core, self._socket_of)
        #: Set when stopping and the last dial in flight has been answered.
        self._drained: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._announce_loop())

    def reload_allowed_peers(self) -> None:
        """Re-read the allow list (SIGHUP).  Connected peers stay connected;
        the new list applies to joins from now on."""
        if not self.config.allow_peers_file:
            return
        try:
            self.core.allowed_peers = load_allowed_peers(self.config.allow_peers_file)
        except errors.ConfigError as exc:
            log.error("allow list not reloaded, keeping the previous one: %s", exc)
            return
        log.info("allow list reloaded: %d peer ids allowed", len(self.core.allowed_peers))

    async def drain(self) -> None:
        """Give dials in flight up to ``shutdown_grace`` seconds to be answered
        (called once the server accepts no new connections)."""
        if self._dial_acks:
            log.info("waiting for %d dials in flight", len(self._dial_acks))
            self._drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), self.config.shutdown_grace)

    async def stop(self) -> None:
        """Stop the timers and close every connection."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self.fanout.close()
        for timer in self._dial_timers.values():
            timer.cancel()
        self._dial_timers.clear()
        await self._close_all_sockets()
        await self.sio.shutdown()
        for task in list(self._tasks):
            task.cancel()

    async def _close_all_sockets(self) -> None:
        # python-engineio's own disconnect-all waits until every socket's queue
        # is drained, which a long-polling client that stopped polling never
        # does; close without waiting and end each writer explicitly instead.
        eio = self.sio.eio
        for sock in list(eio.sockets.values()):
            await sock.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
            sock.queue.put_nowait(None)
        eio.sockets.clear()

    async def _announce_loop(self) -> None:
        """The one periodic task: announcement rounds, and now and then a sweep
        of per-address limit state left by departed clients."""
        tick = min(0.25, self.config.announce_interval / 4)
        next_sweep = time.monotonic() + SWEEP_INTERVAL
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            try:
                await self.perform(self.core.announcements_due(now))
                # This round's share goes out now, with any joins gathered.
                self.fanout.flush()
                if now >= next_sweep:
                    next_sweep = now + SWEEP_INTERVAL
                    self.admission.sweep()
            except Exception:
                log.exception("announcement round failed")

    # -- connections ------------------------------------------------------------------

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        self._eio_sid[sid] = eio_sid
        self._remote[sid] = environ.get("REMOTE_ADDR", "")
        self.core.connect(sid)
        log.debug(
            "connect %s from %s (%s)",
            sid,
            self._remote[sid],
            "v2/EIO3" if self.sio.is_v2(eio_sid) else "v4/EIO4",
        )

    async def _on_disconnect(self, sid: str, reason: str = "") -> None:
        owned = list(self.core.directory.owned_by(sid))
        effects = self.core.disconnect(sid)
        self.admission.forget_connection(sid)
        for key in [k for k in self._dial_acks if k.dialer == sid]:
            self._forget_dial(key)
        await self.perform(effects)
        for address in owned:
            log.info("left %s (%s)", address, reason or "disconnect")
        self._eio_sid.pop(sid, None)
        self._remote.pop(sid, None)

    # -- requests ---------------------------------------------------------------------

    async def relay_chunk(self, eio_sid: str, head: str, name: str, chunk: bytes) -> None:
        """Forward one relayed chunk, already split into its packet text and
        attachment, without decoding or re-encoding either when the stream is
        flowing: the sink receives the same bytes the source sent."""
        sid = self.sio.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is None:
            return
        sink = self.core.streams.open_sink(sid, name)
        if sink is None:
            await self.on_event(sid, STREAM_QUEUE + name, (chunk,), None)
            return
        if await self._cut_if_behind(sid, name, sink):
            return
        self._enqueue(
            sink,
            [
                eio_packet.Packet(eio_packet.MESSAGE, head),
                eio_packet.Packet(eio_packet.MESSAGE, chunk),
            ],
        )

    async def on_event(self, sid: str, event: str, args: tuple[Any, ...], ack: _Ack | None) -> None:
        try:
            if event.startswith(STREAM_PREFIX):
                if event.startswith(STREAM_QUEUE):
                    name = event[len(STREAM_QUEUE) :]
                    sink = self.core.streams.open_sink(sid, name)
                    if sink is not None and await self._cut_if_behind(sid, name, sink):
                        return
                await self.perform(self.core.stream_event(sid, event, args))
            elif not self.admission.allow_event(sid):
                # A flood of control events is answered (when it asks for an
                # answer) but not served, so it cannot crowd out other clients.
                if ack is not None:
                    await self.send_ack(ack, (EVENT_RATE_LIMITED,))
            elif event == "ss-join":
                await self._join(sid, args, ack)
            elif event == "ss-dial":
                await self._dial(sid, args, ack)
            elif event == "ss-leave":
                self._leave(sid, args)
                if ack is not None:
                    await self.send_ack(ack, ())
            elif ack is not None:
                await self.send_ack(ack, (f"Unknown event: {_short(event, 64)}",))
        except Exception:
            log.exception("error handling %s from %s", _short(event, 64), sid)
            if ack is not None:
                await self.send_ack(ack, ("Internal server error",))

    async def _join(self, sid: str, args: tuple[Any, ...], ack: _Ack | None) -> None:
        if ack is None:
            return  # the reference ignores joins that cannot be answered
        if not self.admission.allow(self._remote.get(sid, ""), "joins"):
            await self._refuse_join(sid, ack, JOIN_RATE_LIMITED)
            return
        address = args[0] if args else None
        data = args[1] if len(args) > 1 else None
        if not isinstance(address, str) or not isinstance(data, str):
            await self._refuse_join(
                sid, ack, f"{errors.BAD_REQUEST}: ss-join expects (multiaddr, string)"
            )
            return
        if len(address) > MAX_ADDRESS_LENGTH or not is_multiaddr(address):
            await self._refuse_join(sid, ack, errors.INVALID_MULTIADDR)
            return
        if len(data) > MAX_CHALLENGE_DATA_LENGTH:
            await self._refuse_join(sid, ack, f"{errors.BAD_REQUEST}: challenge data too long")
            return
        reply, effects = self.core.join(sid, address, data)
        await self.perform(effects)
        await self.send_ack(ack, reply)
        if reply[0] is not None:
            log.info("join failed %s from %s: %s", address, self._remote.get(sid), reply[0])
        elif len(reply) > 2:
            log.info("joined %s from %s", address, self._remote.get(sid))

    async def _refuse_join(self, sid: str, ack: _Ack, problem: str) -> None:
        self.core.stats.joins_failure += 1
        log.info("join refused from %s: %s", self._remote.get(sid), problem)
        await self.send_ack(ack, (problem,))

    def _leave(self, sid: str, args: tuple[Any, ...]) -> None:
        address = args[0] if args else None
        if isinstance(address, str) and address in self.core.directory.owned_by(sid):
            self.core.leave(sid, address)
            log.info("left %s (ss-leave)", address)

    async def _dial(self, sid: str, args: tuple[Any, ...], ack: _Ack | None) -> None:
        if ack is None:
            return  # the reference ignores dials that cannot be answered
        if not self.admission.allow(self._remote.get(sid, ""), "dials"):
            self.core.stats.dials_failure += 1
            await self.send_ack(ack, (DIAL_RATE_LIMITED,))
            return
        from_addr, to_addr, dial_id = [*args, None, None, None][:3]
        if not (
            isinstance(from_addr, str)
            and isinstance(to_addr, str)
            and isinstance(dial_id, str)
            and 0 < len(dial_id) <= MAX_DIAL_ID_LENGTH
            and len(from_addr) <= MAX_ADDRESS_LENGTH
            and len(to_addr) <= MAX_ADDRESS_LENGTH
        ):
            self.core.stats.dials_failure += 1
            await self.send_ack(
                ack, (f"{errors.BAD_REQUEST}: ss-dial expects (multiaddr, multiaddr, dial id)",)
            )
            return
        reply, effects = self.core.dial(sid, from_addr, to_addr, dial_id)
        if reply is not None:
            log.info("dial %s -> %s failed: %s", from_addr, to_addr, reply[0])
            await self.send_ack(ack, reply)
            return
        key = DialKey(sid, dial_id)
        self._dial_acks[key] = ack
        log.info("dial %s -> %s (%s)", from_addr, to_addr, dial_id)
        await self.perform(effects)

    # -- effects ------------------------------------------------------------------------

    async def perform(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Emit):
                await self.send_event(effect.to, effect.event, effect.args)
            elif isinstance(effect, Announce):
                self.fanout.add(effect)
            elif isinstance(effect, AskIncoming):
                await self._ask_incoming(effect)
            elif isinstance(effect, AnswerDial):
                await self._answer_dial(effect)

    async def send_event(
        self, sid: str, event: str, args: tuple[object, ...], ack_id: int | None = None
    ) -> None:
        eio_sid = self._eio_sid.get(sid)
        if eio_sid is not None:
            await self._send(eio_sid, codec.EVENT, [event, *args], ack_id)

    async def send_ack(self, ack: _Ack, reply: tuple[object, ...]) -> None:
        await self._send(ack.eio_sid, codec.ACK, list(reply), ack.id)

    async def _send(
        self, eio_sid: str, packet_type: int, data: list[Any], ack_id: int | None
    ) -> None:
        sock: Socket | None = self.sio.eio.sockets.get(eio_sid)
        if sock is None:
            return
        text = codec.encode(packet_type, data, ack_id)
        if text is not None:
            sock.send_text(text)
            return
        # Binary data (a relayed chunk held until its stream was accepted).
        pkt = self.sio.packet_class(packet_type, namespace="/", data=data, id=ack_id)
        await self.sio._send_packet(eio_sid, pkt)

    def _socket_of(self, sid: str) -> Socket | None:
        sock: Socket | None = self.sio.eio.sockets.get(self._eio_sid.get(sid, ""))
        return sock

    def _enqueue(self, sid: str, packets: list[eio_packet.Packet]) -> None:
        sock = self._socket_of(sid)
        if sock is not None:
            sock.enqueue(packets)

    async def _cut_if_behind(self, source: str, name: str, sink: str) -> bool:
        """Cut the stream if its receiver has too much relayed data unread."""
        sock = self._socket_of(sink)
        behind = sock.queued_bytes if sock is not None else 0
        if behind <= self.config.relay_buffer_limit:
            return False
        log.info("relay %s cut: its receiver is %d bytes behind", name, behind)
        await self.perform(self.core.streams.cut(source, name))
        return True

    async def _ask_incoming(self, effect: AskIncoming) -> None:
        key = effect.dial

        async def answered(*data: Any) -> None:
            self._incoming_ack.pop(key, None)
            await self.perform(self.core.dial_answered(key, data[0] if data else None))

        ack_id = self.sio.manager._generate_ack_id(effect.to, answered)
        self._incoming_ack[key] = (effect.to, ack_id)
        loop = asyncio.get_running_loop()
        self._dial_timers[key] = loop.call_later(
            self.config.dial_timeout, self._dial_timed_out, key
        )
        await self.send_event(effect.to, "ss-incomming", effect.args, ack_id=ack_id)

    def _dial_timed_out(self, key: DialKey) -> None:
        self._dial_timers.pop(key, None)
        self._spawn(self.perform(self.core.dial_timed_out(key)))

    async def _answer_dial(self, effect: AnswerDial) -> None:
        ack = self._dial_acks.get(effect.dial)
        self._forget_dial(effect.dial)
        if ack is None:
            return
        if effect.reply:
            log.info("dial %s failed: %s", effect.dial.dial_id, _short(effect.reply[0]))
        await self.send_ack(ack, effect.reply)

    def _forget_dial(self, key: DialKey) -> None:
        self._dial_acks.pop(key, None)
        timer = self._dial_timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if self._drained is not None and not self._dial_acks:
            self._drained.set()
        target = self._incoming_ack.pop(key, None)
        if target is not None:
            # A late answer from the listener must find nothing to resolve.
            callbacks = self.sio.manager.callbacks.get(target[0])
            if callbacks is not None:
                callbacks.pop(target[1], None)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
