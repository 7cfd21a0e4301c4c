"""The rendezvous service: requests in, rules, effects out, timers.

This module connects :class:`~wsstar.star.rendezvous.Rendezvous` to the
Socket.IO server.  It sees connections only as :class:`~wsstar.server.engineio.Session`
objects and plain values; all of python-socketio lives behind
:class:`~wsstar.server.engineio.SocketServer`.  Requests are parsed by
:mod:`wsstar.wire.requests`, answered by the rules, and their effects are
routed to their owners: this node's sockets, or through
:mod:`~wsstar.server.crossing` another node's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, assert_never

from wsstar import errors
from wsstar.cluster.links import LinkAddress, NodeLinks
from wsstar.cluster.replica import Change, ClusterDirectory
from wsstar.directory import NodeId, Owner, PeerDirectory, SocketId
from wsstar.directory.memory import MemoryDirectory
from wsstar.identity.allowlist import load_allowed_peers
from wsstar.server.admission import Admission
from wsstar.server.config import ServerConfig
from wsstar.server.crossing import Crossing
from wsstar.server.dials import DialBook, DialRecord
from wsstar.server.engineio import Session, SocketServer
from wsstar.server.fanout import AnnouncementFanout
from wsstar.server.logtext import LogThrottle, fields, printable
from wsstar.star.announce import AnnouncementBudget, rounds_period
from wsstar.star.effects import (
    Announce,
    AnswerDial,
    AskIncoming,
    AwaitReplay,
    DialKey,
    Effect,
    Emit,
    Replay,
)
from wsstar.star.flow import GLOBAL, FlowControl, Gate, Held, Link
from wsstar.star.rendezvous import Rendezvous
from wsstar.wire import codec, events
from wsstar.wire.reasons import EVENT_NAME_MISSING, Reason, Refusal, unknown_event
from wsstar.wire.replies import Joined, dial_ack, join_ack, refusal_ack
from wsstar.wire.requests import DialRequest, parse_dial, parse_join, parse_leave

if TYPE_CHECKING:
    from wsstar.cluster.redis_bus import RedisBus

log = logging.getLogger("wsstar")

#: Seconds between sweeps of idle per-address limit state.
SWEEP_INTERVAL = 30.0
#: Seconds over which refusals to one client address share one log line.
REFUSAL_LOG_INTERVAL = 10.0
#: Requests refused in a row after which a connection is closed: no honest
#: client gets near it (it would have to ignore a thousand errors).
MAX_REFUSALS_IN_A_ROW = 1000


@dataclass(slots=True)
class _Client:
    """A connected socket of this node: how effects address it, and where to write."""

    owner: Owner
    session: Session
    #: Requests refused in a row: a client that only ever sends what is
    #: refused is disconnected rather than answered forever.
    refusals: int = 0


class RendezvousService:
    """One rendezvous server: the rules, their socket plumbing and the timers."""

    def __init__(
        self,
        config: ServerConfig,
        directory: PeerDirectory | None = None,
        session_prefix: str = "",
    ) -> None:
        """``session_prefix`` starts every Engine.IO session id (a worker's
        index, see :mod:`wsstar.server.workers`)."""
        self.config = config
        self.started = time.time()
        #: Tells this process from any other answering on the same address.
        self.instance = secrets.token_hex(8)
        self.admission = Admission(config.limits, time.monotonic)
        #: The cluster bus, when this process is a node of a cluster.
        self.bus: RedisBus | None = None
        if directory is None:
            directory = (
                ClusterDirectory(NodeId(self.instance)) if config.redis_url else MemoryDirectory()
            )
        self.core = Rendezvous(
            directory,
            config.rules,
            announce_interval=config.announce_interval,
            announce_budget=config.announce_budget,
            clock=time.monotonic,
        )
        self.node = self.core.directory.node
        self.sio = SocketServer(
            self,
            cors_allowed_origins=list(config.cors_origins)
            if config.cors_origins != ("*",)
            else "*",
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            max_http_buffer_size=config.max_message_size,
            websocket_compression=config.websocket_compression,
            trust_proxy=config.trust_proxy,
            send_queue_bytes=config.send_queue_bytes,
            send_queue_packets=config.send_queue_packets,
            session_prefix=session_prefix,
        )
        if config.allow_peers_file:
            self.core.allowed_peers = load_allowed_peers(config.allow_peers_file)
            log.info("private swarm: %d peer ids allowed", len(self.core.allowed_peers))
        self._clients: dict[SocketId, _Client] = {}
        self._dials = DialBook()
        self.flow = FlowControl(config.relay_stall_timeout)
        #: Local receivers being watched until they drain (see watch_sink).
        self._watched: set[Owner] = set()
        self._refusal_log = LogThrottle(REFUSAL_LOG_INTERVAL, time.monotonic)
        self._ack_ids = itertools.count(1)
        self._ticker: asyncio.Task[None] | None = None
        #: Seconds between the ticker's runs: replays and rounds go out on them.
        self._tick = min(0.25, config.announce_interval / 4)
        budget = (
            AnnouncementBudget(config.announce_budget, config.announce_interval)
            if config.announce_budget is not None
            else None
        )
        self.fanout = AnnouncementFanout(
            self.core.directory, self.local_session, budget, quote=self.core.quote
        )
        #: Set when stopping and the last dial in flight has been answered.
        self._drained: asyncio.Event | None = None
        #: Relays with other nodes' sockets, in a cluster.
        self.crossing: Crossing | None = None
        if config.redis_url and isinstance(directory, ClusterDirectory):
            bus = self.bus = _cluster_bus(config, directory, self._cluster_changed)
            self.crossing = Crossing(self, NodeLinks(self.node, self, bus.link_of))

    def _cluster_changed(self, change: Change) -> None:
        """Other nodes' joins and departures, as this node's view took them in."""
        effects: list[Effect] = []
        for address in change.joined:
            effects.extend(self.core.remote_joined(address))
        for address in change.left:
            self.core.remote_left(address)
        self.perform(effects)

    # Node links report here (the LinkHandler protocol); the crossing does the work.

    def link_message(self, node: NodeId, header: list[object], payload: bytes) -> None:
        assert self.crossing is not None
        self.crossing.link_message(node, header, payload)

    def link_lost(self, node: NodeId) -> None:
        assert self.crossing is not None
        self.crossing.link_lost(node)

    def link_ready(self, node: NodeId) -> None:
        assert self.crossing is not None
        self.crossing.link_ready(node)

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._announce_loop())
        if self.bus is not None and self.crossing is not None:
            host, advertised = _link_hosts(self.config)
            port = await self.crossing.links.listen(host, self.config.link_port)
            self.bus.link = LinkAddress(advertised, port, self.crossing.links.token)
            log.info("cluster node %s: relay link on %s:%d", self.node, advertised, port)
            self.bus.start()

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
        if self._dials:
            log.info("waiting for %d dials in flight", len(self._dials))
            self._drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), self.config.shutdown_grace)

    async def stop(self) -> None:
        """Stop the timers and close every connection."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self.fanout.close()
        self._dials.close()
        await self.sio.close_all()
        await self.sio.shutdown()
        if self.bus is not None:
            await self.bus.stop()
        if self.crossing is not None:
            await self.crossing.links.close()

    async def _announce_loop(self) -> None:
        """The one periodic task: announcement rounds, and now and then a sweep
        of per-address limit state left by departed clients."""
        tick = self._tick
        round_period = rounds_period(self.config.announce_interval)
        next_round = time.monotonic()
        next_sweep = time.monotonic() + SWEEP_INTERVAL
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            try:
                self.perform(self.core.announcements_due(now))
                if now >= next_round:
                    # The rounds' share goes out with any joins gathered.
                    next_round = now + round_period
                    self.fanout.flush(rounds=True)
                self._relay_tick(now)
                if now >= next_sweep:
                    next_sweep = now + SWEEP_INTERVAL
                    self.admission.sweep()
                for remote, held in self._refusal_log.flush():
                    log.info(
                        "%d more requests or connections from %s refused in %g s",
                        held,
                        remote,
                        REFUSAL_LOG_INTERVAL,
                    )
            except Exception:
                log.exception("announcement round failed")

    # -- connections (the Socket.IO server's Handler) ----------------------------------

    def admit(self, remote: str) -> bool:
        refused = self.admission.connect(remote)
        if refused is None:
            return True
        self._connection_refused(remote, f"{refused.replace('_', ' ')} limit reached")
        return False

    def released(self, remote: str) -> None:
        self.admission.disconnect(remote)

    def origin_refused(self, remote: str, origin: str) -> None:
        self.admission.refused["origin"] += 1
        self._connection_refused(remote, f"origin {printable(origin)} is not in --cors-origins")

    def _connection_refused(self, remote: str, reason: str) -> None:
        if self._refusal_log.allow(remote):
            log.info(
                "connection from %s refused: %s",
                remote,
                reason,
                extra=fields("connection_refused", remote, reason=reason),
            )

    def admit_tcp(self, remote: str) -> bool:
        """A new TCP connection, before any HTTP: within its address's cap?"""
        if self.admission.tcp_open(remote):
            return True
        self._connection_refused(remote, "too many TCP connections")
        return False

    def headers_too_slow(self, remote: str, deadline: float) -> None:
        """A connection closed because its request headers took over ``deadline`` s."""
        if self._refusal_log.allow(remote):
            log.info(
                "closing a connection from %s: no request headers within %gs", remote, deadline
            )

    async def connected(self, sid: SocketId, session: Session) -> None:
        self._clients[sid] = _Client(self.core.connect(sid), session)
        log.debug(
            "connect %s from %s (%s)", sid, session.remote, "v2/EIO3" if session.v2 else "v4/EIO4"
        )

    async def disconnected(self, sid: SocketId, reason: str) -> None:
        client = self._clients.get(sid)
        owned = self.core.owned_by(sid)
        effects = self.core.disconnect(sid)
        self.admission.forget_connection(sid)
        if client is not None:
            for key in self._dials.dialed_by(client.owner):
                self._forget_dial(key)
        self.perform(effects)
        if self.crossing is not None:
            self.crossing.socket_gone(sid)
        self.fanout.forget(sid)
        self._clients.pop(sid, None)
        if client is not None:
            self.flow.forget(client.owner)
            self.open_gate(client.owner)  # whoever it held as a full receiver
        self._recheck_held()
        if log.isEnabledFor(logging.INFO):
            remote = client.session.remote if client is not None else "?"
            why = reason or "disconnect"
            for address in owned:
                log.info(
                    "left %s from %s (%s)",
                    printable(address),
                    remote,
                    why,
                    extra=fields("left", remote, address, why),
                )

    # -- requests ---------------------------------------------------------------------

    async def chunk(self, sid: SocketId, stream: str, head: str, data: bytes) -> None:
        """Forward one relayed chunk, already split into its packet text and
        attachment, without decoding or re-encoding either when the stream is
        flowing: the sink receives the same bytes the source sent."""
        client = self._clients.get(sid)
        if client is None:
            return
        source = client.owner
        sink = self.core.streams.open_sink(source, stream)
        if sink is None:
            crossing = self.crossing
            if crossing is not None and (node := crossing.chunk_out(sid, stream, data)):
                self._bound_link(source, node)
                return
            self.perform(self.core.stream_event(sid, events.QUEUE + stream, (data,)))
            self._bound_held(source)
            return
        if sink.node != self.node:
            assert self.crossing is not None
            self.crossing.send(sink.node, ["c", sink.socket, stream], data)
            if self.flow.holds(sink):
                self.hold(source, sink, self.crossing.progress.get(sink, 0))
            self._bound_link(source, sink.node)
            return
        session = self.local_session(sink.socket)
        if session is not None:
            session.send_binary(head, data)
            self._bound_sink(source, sink, session)

    def remote_chunk(self, source: Owner, stream: str, data: bytes) -> None:
        """A chunk from another node's socket, for a stream kept here: the
        sink is one of this node's sockets (the dialer), or it is held."""
        sink = self.core.streams.open_sink(source, stream)
        if sink is None:
            self.perform(self.core.remote_stream_event(source, events.QUEUE + stream, (data,)))
            self._bound_held(source)
            return
        session = self._session_of(sink)
        if session is not None:
            session.send_binary(codec.chunk_head(stream), data)
            self._bound_sink(source, sink, session)

    def remote_stream_event(self, source: Owner, event: str, args: tuple[object, ...]) -> None:
        """Another node's socket's accept or end of a stream kept here."""
        self.perform(self.core.remote_stream_event(source, event, args))
        self._recheck_held()

    def remote_gone(self, owner: Owner) -> None:
        """Another node's socket with relays kept here disconnected."""
        self.perform(self.core.remote_gone(owner))
        self.flow.forget(owner)
        self.open_gate(owner)
        self._recheck_held()

    async def ack(self, sid: SocketId, ack_id: int, args: tuple[Any, ...]) -> None:
        """A listener answered ``ss-incomming``."""
        key = self._dials.answered(sid, ack_id)
        if key is not None:
            self.perform(self.core.dial_answered(key, args[0] if args else None))
        elif self.crossing is not None:
            self.crossing.answered(sid, ack_id, args)

    async def event(
        self, sid: SocketId, event: str | None, args: tuple[Any, ...], ack_id: int | None
    ) -> None:
        client = self._clients.get(sid)
        if client is None:
            return
        try:
            self._event(client, sid, event, args, ack_id)
        except Exception:
            log.exception("error handling %s from %s", printable(event), sid)
            if ack_id is not None:
                self._ack(client, ack_id, refusal_ack(Refusal(Reason.INTERNAL_ERROR)))

    def _event(
        self,
        client: _Client,
        sid: SocketId,
        event: str | None,
        args: tuple[Any, ...],
        ack_id: int | None,
    ) -> None:
        if event is not None and event.startswith(events.STREAM_PREFIX):
            self._stream_event(client, sid, event, args)
            return
        if not self.admission.allow_event(sid):
            # A flood of control events is answered (when it asks for an
            # answer) but not served, so it cannot crowd out other clients.
            refusal = Refusal(Reason.EVENT_RATE_LIMITED)
            if ack_id is not None:
                self._ack(client, ack_id, refusal_ack(refusal))
            self._refused(client)
            if event == events.JOIN:
                self._log_join_refused(client, args, refusal)
            elif event == events.DIAL:
                self._log_dial_refused(client, args, refusal)
            return
        if event == events.JOIN:
            if ack_id is not None:  # the reference ignores joins that cannot be answered
                self._join(client, sid, args, ack_id)
        elif event == events.DIAL:
            if ack_id is not None:  # the reference ignores dials that cannot be answered
                self._dial(client, sid, args, ack_id)
        elif event == events.LEAVE:
            request = parse_leave(args)
            if self.core.leave(sid, request) and request is not None:
                remote = client.session.remote
                log.info(
                    "left %s from %s (ss-leave)",
                    printable(request.address),
                    remote,
                    extra=fields("left", remote, request.address, "ss-leave"),
                )
            if ack_id is not None:
                self._ack(client, ack_id, ())
        elif ack_id is not None:
            # socket.io-parser refuses events without a name outright;
            # answering is kinder, and counts against the event limit above.
            refusal = (
                Refusal(Reason.BAD_REQUEST, EVENT_NAME_MISSING)
                if event is None
                else unknown_event(event)
            )
            self._ack(client, ack_id, refusal_ack(refusal))
            self._refused(client)

    def _refused(self, client: _Client) -> None:
        client.refusals += 1
        if client.refusals == MAX_REFUSALS_IN_A_ROW:
            log.info(
                "closing %s from %s: %d requests refused in a row",
                client.owner.socket,
                client.session.remote,
                client.refusals,
            )
            client.session.drop()

    def _join(self, client: _Client, sid: SocketId, args: tuple[Any, ...], ack_id: int) -> None:
        remote = client.session.remote
        request = (
            parse_join(args)
            if self.admission.allow(remote, "joins")
            else Refusal(Reason.JOIN_RATE_LIMITED)
        )
        reply, effects = self.core.join(sid, request)
        self.perform(effects)
        if isinstance(reply, Joined):
            client.session.send_encoded(codec.joined_ack(ack_id, reply.listed))
        else:
            self._ack(client, ack_id, join_ack(reply))
        if isinstance(reply, Refusal):
            self._refused(client)
            self._log_join_refused(client, args, reply)
            return
        client.refusals = 0
        if isinstance(reply, Joined) and log.isEnabledFor(logging.INFO):
            log.info(
                "joined %s from %s",
                printable(args[0]),
                remote,
                extra=fields("joined", remote, args[0]),
            )

    # One wording for every refused request, "WHAT from CLIENT refused: REASON",
    # as for refused connections, whichever check refused it.

    def _log_join_refused(self, client: _Client, args: tuple[Any, ...], refusal: Refusal) -> None:
        remote = client.session.remote
        if self._refusal_log.allow(remote):
            address = args[0] if args else None
            log.info(
                "join %s from %s refused: %s",
                printable(address),
                remote,
                refusal.text,
                extra=fields("join_refused", remote, address, refusal.text),
            )

    def _log_dial_refused(self, client: _Client, args: tuple[Any, ...], refusal: Refusal) -> None:
        remote = client.session.remote
        if self._refusal_log.allow(remote):
            to_addr = args[1] if len(args) > 1 else None
            log.info(
                "dial %s -> %s from %s refused: %s",
                printable(args[0] if args else None),
                printable(to_addr),
                remote,
                refusal.text,
                extra=fields("dial_refused", remote, to_addr, refusal.text),
            )

    def _dial(self, client: _Client, sid: SocketId, args: tuple[Any, ...], ack_id: int) -> None:
        remote = client.session.remote
        request = (
            parse_dial(args)
            if self.admission.allow(remote, "dials")
            else Refusal(Reason.DIAL_RATE_LIMITED)
        )
        refusal, effects = self.core.dial(sid, request)
        if refusal is not None:
            self._refused(client)
            self._log_dial_refused(client, args, refusal)
            self._ack(client, ack_id, refusal_ack(refusal))
            return
        assert isinstance(request, DialRequest)  # only a parsed request is ever served
        client.refusals = 0
        self._dials.add(DialKey(client.owner, request.dial_id), ack_id)
        if log.isEnabledFor(logging.INFO):  # the text is made only if it is written
            log.info(
                "dial %s -> %s from %s (%s)",
                printable(request.from_addr),
                printable(request.to_addr),
                remote,
                printable(request.dial_id),
                extra=fields("dial", remote, request.to_addr),
            )
        self.perform(effects)

    # -- effects ------------------------------------------------------------------------

    def perform(self, effects: Iterable[Effect]) -> None:
        """Carry out the rules' effects in order, each routed to its owner."""
        for effect in effects:
            match effect:
                case Emit(to, event, args):
                    self._emit(to, event, args)
                case Announce():
                    self.fanout.add(effect)
                case Replay(to, addresses):
                    session = self._session_of(to)
                    if session is not None:
                        self.fanout.replay(to.socket, session, addresses)
                case AwaitReplay(to, seconds):
                    if to.node == self.node:
                        # The replay goes out on the tick after it is due,
                        # and ends the hold itself.
                        self.fanout.hold(to.socket, seconds + self._tick)
                case AskIncoming():
                    self._ask_incoming(effect)
                case AnswerDial(dial, reply):
                    record = self._forget_dial(dial)
                    client = self._clients.get(dial.dialer.socket)
                    if record is not None and client is not None:
                        answer = dial_ack(reply)
                        if answer:
                            remote = client.session.remote
                            log.info(
                                "dial %s from %s failed: %s",
                                printable(dial.dial_id),
                                remote,
                                printable(answer[0]),
                                extra=fields("dial_failed", remote, reason=printable(answer[0])),
                            )
                        self._ack(client, record.ack_id, answer)
                case _:
                    assert_never(effect)
        departed = self.core.streams.departed
        if departed and self.crossing is not None:
            self.crossing.departed(departed)
            departed.clear()

    def _session_of(self, owner: Owner) -> Session | None:
        """The session effects for ``owner`` are written to, if it is a live
        socket of this node."""
        return self.local_session(owner.socket) if owner.node == self.node else None

    def local_session(self, sid: SocketId) -> Session | None:
        client = self._clients.get(sid)
        return client.session if client is not None else None

    def _emit(self, to: Owner, event: str, args: tuple[object, ...]) -> None:
        if to.node != self.node:
            if self.crossing is not None:
                self.crossing.emit(to, event, args)
            return
        self.emit_local(to.socket, event, args)

    def emit_local(
        self, sid: SocketId, event: str, args: tuple[object, ...], ack_id: int | None = None
    ) -> None:
        """Write an event to one of this node's sockets."""
        session = self.local_session(sid)
        if session is None:
            return
        text = codec.encode(codec.EVENT, [event, *args], ack_id)
        if text is not None:
            session.send_text(text)
        elif event.startswith(events.QUEUE) and len(args) == 1 and isinstance(args[0], bytes):
            # A relayed chunk held until its stream was accepted.
            session.send_binary(codec.chunk_head(event[len(events.QUEUE) :]), args[0])
        else:
            raise TypeError(f"{event} cannot be encoded")

    def _ack(self, client: _Client, ack_id: int, reply: tuple[object, ...]) -> None:
        text = codec.encode(codec.ACK, list(reply), ack_id)
        assert text is not None  # replies are JSON: strings, lists, None
        client.session.send_text(text)

    # -- relay flow control ----------------------------------------------------------------

    def _stream_event(
        self, client: _Client, sid: SocketId, event: str, args: tuple[Any, ...]
    ) -> None:
        """A pull-stream event that did not take the chunk fast path."""
        if self.crossing is not None and self.crossing.stream_event_out(sid, event, args):
            return
        sink = (
            self.core.streams.open_sink(client.owner, event[len(events.QUEUE) :])
            if event.startswith(events.QUEUE)
            else None
        )
        self.perform(self.core.stream_event(sid, event, args))
        if sink is not None:
            session = self._session_of(sink)
            if session is not None:
                self._bound_sink(client.owner, sink, session)
        elif event.startswith(events.QUEUE):
            self._bound_held(client.owner)
        else:
            # An accept sends held chunks on; an end may drop them.
            self._recheck_held()

    def _bound_sink(self, source: Owner, sink: Owner, session: Session) -> None:
        """After relaying to ``sink``: hold the source while the sink is full,
        or while the server as a whole holds too much."""
        config = self.config
        if (
            session.backlog() > config.relay_buffer_limit
            or session.queued_packets() > config.relay_packet_limit
        ):
            self.watch_sink(sink, session)
            self.hold(source, sink, session.sent_bytes)
        if self.sio.queued_bytes + self.core.streams.held_total() > config.relay_memory_limit:
            self.hold(source, GLOBAL)

    def watch_sink(self, sink: Owner, session: Session) -> None:
        """A local receiver is full: when it drains, its senders here and on
        other nodes are read again.  One watch per episode of fullness."""
        if sink in self._watched:
            return
        self._watched.add(sink)
        config = self.config

        def drained() -> None:
            self._watched.discard(sink)
            self.open_gate(sink)
            if self.crossing is not None:
                self.crossing.sink_drained(sink.socket)

        session.on_drained(config.relay_buffer_limit // 2, config.relay_packet_limit // 2, drained)

    def _bound_held(self, source: Owner) -> None:
        """After holding a chunk for a receiver that has not accepted: hold the
        source once it has too much waiting that way."""
        if self.core.streams.held_bytes(source) > self.config.relay_buffer_limit:
            self.hold(source, Held(source))

    def _bound_link(self, source: Owner, node: NodeId) -> None:
        """After writing a chunk to another node: hold the source while that
        node's link is backed up."""
        if self.crossing is not None and self.crossing.links.full(node):
            self.hold(source, Link(node))

    def hold(self, source: Owner, gate: Gate, progress: int = 0) -> None:
        """Stop reading from ``source`` until ``gate`` (and any other holding
        it) opens; another node's socket is paused by its node."""
        if not self.flow.hold(source, gate, time.monotonic(), progress):
            return
        if source.node == self.node:
            session = self.local_session(source.socket)
            if session is not None:
                session.pause()
        elif self.crossing is not None:
            self.crossing.send(source.node, ["pause", source.socket])

    def open_gate(self, gate: Gate) -> None:
        for source in self.flow.open(gate):
            if source.node == self.node:
                session = self.local_session(source.socket)
                if session is not None:
                    session.resume()
            elif self.crossing is not None:
                self.crossing.send(source.node, ["resume", source.socket])

    def _recheck_held(self) -> None:
        low = self.config.relay_buffer_limit // 2
        for gate in self.flow.held_gates():
            if self.core.streams.held_bytes(gate.source) <= low:
                self.open_gate(gate)

    def _relay_tick(self, now: float) -> None:
        """Cut the streams into receivers that stopped taking anything, drop
        streams nobody accepted, and lift the server-wide hold once memory is
        back under it."""
        remote = self.crossing.progress if self.crossing is not None else {}
        watched = set(self.flow.watched())
        progress = {
            sink: session.sent_bytes
            for sink in watched
            if (session := self._session_of(sink)) is not None
        }
        progress.update(
            (sink, sent) for sink, sent in remote.items() if sink in self.flow.watched()
        )
        if self.crossing is not None:
            self.crossing.tick()
        for sink in self.flow.stalled(now, progress):
            effects: list[Effect] = []
            for source, name in self.core.streams.feeding(sink):
                effects.extend(self.core.streams.cut(source, name))
                log.info(
                    "relay %s cut: its receiver took nothing for %gs",
                    printable(name),
                    self.config.relay_stall_timeout,
                )
            self.perform(effects)
            self.open_gate(sink)
        self.perform(self.core.streams.expire(now, self.config.dial_timeout))
        self._recheck_held()
        if (
            self.flow.holds(GLOBAL)
            and self.sio.queued_bytes + self.core.streams.held_total()
            <= self.config.relay_memory_limit // 2
        ):
            self.open_gate(GLOBAL)

    def _ask_incoming(self, effect: AskIncoming) -> None:
        timer = asyncio.get_running_loop().call_later(
            self.config.dial_timeout, self._dial_timed_out, effect.dial
        )
        if effect.to.node != self.node:
            assert self.crossing is not None
            self._dials.asked(effect.dial, effect.to, None, timer)
            self.crossing.ask(effect)
            return
        ack_id = self.next_ack_id()
        self._dials.asked(effect.dial, effect.to, ack_id, timer)
        self.emit_local(effect.to.socket, events.INCOMING, effect.args, ack_id)

    def next_ack_id(self) -> int:
        return next(self._ack_ids)

    def dial_record(self, key: DialKey) -> DialRecord | None:
        return self._dials.get(key)

    def _dial_timed_out(self, key: DialKey) -> None:
        self.perform(self.core.dial_timed_out(key))

    def _forget_dial(self, key: DialKey) -> DialRecord | None:
        record = self._dials.pop(key)
        if (
            record is not None
            and record.listener is not None
            and record.listener.node != self.node
            and self.crossing is not None
        ):
            self.crossing.cancel(record.listener, key)
        if self._drained is not None and not self._dials:
            self._drained.set()
        return record


def _link_hosts(config: ServerConfig) -> tuple[str, str]:
    """Where the node link listens, and the host other nodes are told."""
    listen = config.link_host or config.host
    if config.link_advertise:
        return listen, config.link_advertise
    wildcard = listen in ("", "0.0.0.0", "::")
    return listen, socket.gethostname() if wildcard else listen


def _cluster_bus(
    config: ServerConfig, directory: ClusterDirectory, deliver: Callable[[Change], None]
) -> RedisBus:
    """The Redis bus; ``redis`` is imported only here, as only a cluster needs it."""
    try:
        from wsstar.cluster.redis_bus import RedisBus
    except ImportError as exc:
        raise errors.ConfigError(
            f"--redis-url needs the redis package ({exc}): pip install 'wsstar[cluster]'"
        ) from None
    assert config.redis_url is not None
    return RedisBus(config.redis_url, directory, deliver, config.node_ttl)
