"""Dials and relays between sockets on different cluster nodes.

The dialer's node keeps a cross-node connection whole, in its own rules,
exactly as for two local sockets (see :mod:`wsstar.star.routes`); this
module is the service's side of the node links that make that work:

* effects the rules address to another node's socket travel as frames to
  that node, which writes them to its socket;
* what a socket says about a relay kept elsewhere (its answer to
  ``ss-incomming``, accepts, chunks, ends) travels back, and is handed to
  the rules there as coming from that socket;
* flow control crosses too: a node whose socket receives faster than it
  reads says ``full``, then its progress, then ``drained``; a node that
  holds another node's socket as a source asks that node to pause it.

Frame kinds (:mod:`wsstar.cluster.frames`), as ``[kind, ...]``:

====================  ====================================================
``ask``               sid, dialer, dial id, from: send ``ss-incomming``
``answer``/``refuse`` dialer, dial id, error / reason: the listener answered
``cancel``            sid, dialer, dial id: the dial ended on the dialer's side
``e``                 sid, event, args: an event for a socket
``c`` + payload       sid, stream: a chunk for a socket
``s``                 sid, event, args: a socket's stream event
``q`` + payload       sid, stream: a chunk from a socket
``forget``            sid, stream, as source: that stream ended over there
``gone``              sid: the socket disconnected
``pause``/``resume``  sid: hold, or read again, a socket of the receiver
``full``/``progress`` sid, bytes sent: a socket of the sender reads slowly
``drained``           sid: it caught up
====================  ====================================================
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from wsstar.cluster import frames
from wsstar.cluster.links import NodeLinks
from wsstar.directory import NodeId, Owner, SocketId
from wsstar.server.engineio import Session
from wsstar.star.effects import AskIncoming, DialKey
from wsstar.star.flow import Asked, Link
from wsstar.star.rendezvous import to_chunk
from wsstar.star.routes import Asked as AskedDial
from wsstar.wire import codec, events
from wsstar.wire.reasons import Reason, Refusal

if TYPE_CHECKING:
    from wsstar.server.service import RendezvousService

log = logging.getLogger("wsstar.cluster")


class Crossing:
    """One node's half of every relay with other nodes' sockets."""

    def __init__(self, service: RendezvousService, links: NodeLinks) -> None:
        self._service = service
        self.links = links
        self.node = service.node
        #: This node's sockets that read too slowly, and the nodes told so.
        self._full: dict[SocketId, set[NodeId]] = {}
        #: What other nodes last said their full sockets had taken.
        self.progress: dict[Owner, int] = {}
        #: A node whose link just broke: nothing more is sent to it while
        #: what it held is wound up.
        self._cut_off: NodeId | None = None
        #: Dials to and from other nodes, for the metrics.
        self.dials_out = 0
        self.dials_in = 0
        #: One handler per frame kind.
        self._handlers: dict[str, Callable[[NodeId, list[object], bytes], None]] = {
            "ask": self._ask,
            "answer": self._answer,
            "refuse": self._refuse,
            "cancel": self._cancel,
            "e": self._event,
            "c": self._chunk_in,
            "s": self._stream_event,
            "q": self._chunk_from,
            "forget": self._forget,
            "gone": self._gone,
            "pause": self._pause,
            "resume": self._resume,
            "full": self._sink_full,
            "progress": self._sink_progress,
            "drained": self._sink_drained,
        }

    # -- sending ---------------------------------------------------------------

    def send(self, node: NodeId, header: frames.Header, payload: bytes = b"") -> None:
        if node != self._cut_off:
            self.links.send(node, header, payload)

    def emit(self, to: Owner, event: str, args: tuple[object, ...]) -> None:
        """An effect's event for another node's socket."""
        if event.startswith(events.QUEUE) and len(args) == 1 and isinstance(args[0], bytes):
            self.send(to.node, ["c", to.socket, event[len(events.QUEUE) :]], args[0])
        else:
            self.send(to.node, ["e", to.socket, event, list(args)])

    def ask(self, effect: AskIncoming) -> None:
        self.dials_out += 1
        dial = effect.dial
        self.send(effect.to.node, ["ask", effect.to.socket, dial.dialer.socket, *effect.args])

    def cancel(self, listener: Owner, dial: DialKey) -> None:
        self.send(listener.node, ["cancel", listener.socket, dial.dialer.socket, dial.dial_id])

    def departed(self, entries: list[tuple[Owner, str, bool]]) -> None:
        for owner, name, as_source in entries:
            self.send(owner.node, ["forget", owner.socket, name, as_source])

    def chunk_out(self, source: SocketId, stream: str, data: bytes) -> NodeId | None:
        """A chunk from a local socket for a stream another node keeps: sent
        there; the node, or None if no other node keeps that stream."""
        node = self._service.core.routes.source(source, stream)
        if node is not None:
            self.send(node, ["q", source, stream], data)
        return node

    def stream_event_out(self, sid: SocketId, event: str, args: tuple[object, ...]) -> bool:
        """A local socket's stream event for a stream another node keeps:
        sent there (True), or not one of those (False)."""
        routes = self._service.core.routes
        parsed = events.parse_stream_event(event)
        if parsed is None:
            return False
        kind, name = parsed
        if kind is events.StreamEvent.ACCEPT:
            node = routes.sink(sid, name)
        else:
            node = routes.source(sid, name)
        if node is None:
            return False
        if kind is events.StreamEvent.QUEUE:
            # Not the binary fast path: a chunk some codec sent as JSON.
            chunk = to_chunk(args[0] if args else None)
            if chunk is not None:
                self.send(node, ["q", sid, name], chunk)
            return True
        try:
            json.dumps(args)
        except (TypeError, ValueError):
            args = (True,) if kind is events.StreamEvent.ERROR else ()
        self.send(node, ["s", sid, event, list(args)])
        if kind is events.StreamEvent.ERROR:
            routes.forget(sid, name, as_source=True)
        return True

    def answered(self, sid: SocketId, ack_id: int, args: tuple[object, ...]) -> bool:
        """A local socket answered ``ss-incomming`` sent for another node's dial."""
        core = self._service.core
        error = args[0] if args else None
        refusal = None if error else core.remote_answer_refused(sid)
        asked = core.routes.answered(sid, ack_id, connected=not error and refusal is None)
        if asked is None:
            return False
        if refusal is not None:
            self.send(asked.node, ["refuse", asked.dialer, asked.dial_id, refusal.reason.name])
        else:
            self.send(asked.node, ["answer", asked.dialer, asked.dial_id, error])
        return True

    def socket_gone(self, sid: SocketId) -> None:
        for node in self._service.core.routes.drop_socket(sid):
            self.send(node, ["gone", sid])
        self._full.pop(sid, None)

    def sink_written(self, sid: SocketId, session: Session, node: NodeId) -> None:
        """A chunk from ``node`` was written to a local socket: while the
        socket is too far behind, every such chunk tells its node so, and
        that node holds the senders feeding it (it may have let them go
        meanwhile, after cutting a stalled stream)."""
        config = self._service.config
        if (
            session.backlog() <= config.relay_buffer_limit
            and session.queued_packets() <= config.relay_packet_limit
        ):
            return
        told = self._full.get(sid)
        if told is None:
            told = self._full[sid] = set()
            self._service.watch_sink(Owner(self.node, sid), session)
        told.add(node)
        self.send(node, ["full", sid, session.sent_bytes])

    def sink_drained(self, sid: SocketId) -> None:
        for node in self._full.pop(sid, ()):
            self.send(node, ["drained", sid])

    def tick(self) -> None:
        """Tell the nodes feeding this node's full sockets how far each has got,
        so that their stall timeouts see progress."""
        for sid, told in self._full.items():
            session = self._service.local_session(sid)
            if session is not None:
                for node in told:
                    self.send(node, ["progress", sid, session.sent_bytes])

    # -- receiving (LinkHandler) --------------------------------------------------------

    def link_message(self, node: NodeId, header: frames.Header, payload: bytes) -> None:
        kind, args = header[0], header[1:]
        try:
            self._handlers[str(kind)](node, args, payload)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            log.warning("ignoring a bad %r frame from cluster node %s: %s", kind, node, exc)

    def link_lost(self, node: NodeId) -> None:
        log.info("link with cluster node %s closed: relays with its peers end", node)
        service = self._service
        self._cut_off = node
        try:
            self.links.forget(node)
            service.perform(service.core.node_gone(node))
            for gate in service.flow.gates():
                if (isinstance(gate, Owner) and gate.node == node) or (
                    isinstance(gate, Link | Asked) and gate.node == node
                ):
                    service.open_gate(gate)
            for owner in [o for o in self.progress if o.node == node]:
                del self.progress[owner]
            for told in self._full.values():
                told.discard(node)
        finally:
            self._cut_off = None

    def link_ready(self, node: NodeId) -> None:
        self._service.open_gate(Link(node))

    # -- one handler per frame kind ------------------------------------------------------

    def _ask(self, node: NodeId, args: list[object], _: bytes) -> None:
        sid, dialer, dial_id, from_addr = (str(a) for a in args[:4])
        service = self._service
        refusal = service.core.remote_asked(SocketId(sid), dial_id)
        if refusal is not None:
            self.send(node, ["refuse", dialer, dial_id, refusal.reason.name])
            return
        self.dials_in += 1
        ack_id = service.next_ack_id()
        service.core.routes.ask(SocketId(sid), ack_id, AskedDial(node, SocketId(dialer), dial_id))
        service.emit_local(SocketId(sid), events.INCOMING, (dial_id, from_addr), ack_id)

    def _answer(self, node: NodeId, args: list[object], _: bytes) -> None:
        key = self._dial_key(node, args)
        if key is not None:
            self._service.perform(self._service.core.dial_answered(key, args[2]))

    def _refuse(self, node: NodeId, args: list[object], _: bytes) -> None:
        key = self._dial_key(node, args)
        if key is not None:
            refusal = Refusal(Reason[str(args[2])])
            self._service.perform(self._service.core.dial_refused(key, refusal))

    def _dial_key(self, node: NodeId, args: list[object]) -> DialKey | None:
        """The dial a listener's node answers, if it still waits for that node."""
        key = DialKey(Owner(self.node, SocketId(str(args[0]))), str(args[1]))
        record = self._service.dial_record(key)
        if record is None or record.listener is None or record.listener.node != node:
            return None
        record.listener = None  # answered: nothing to cancel over there
        return key

    def _cancel(self, node: NodeId, args: list[object], _: bytes) -> None:
        sid, dialer, dial_id = (str(a) for a in args[:3])
        self._service.core.routes.cancel(SocketId(sid), AskedDial(node, SocketId(dialer), dial_id))

    def _event(self, node: NodeId, args: list[object], _: bytes) -> None:
        sid, event, values = SocketId(str(args[0])), str(args[1]), args[2]
        assert isinstance(values, list)
        self._service.emit_local(sid, event, tuple(values))

    def _chunk_in(self, node: NodeId, args: list[object], payload: bytes) -> None:
        """A chunk for one of this node's sockets."""
        sid, stream = SocketId(str(args[0])), str(args[1])
        session = self._service.local_session(sid)
        if session is not None:
            session.send_binary(codec.chunk_head(stream), payload)
            self.sink_written(sid, session, node)

    def _stream_event(self, node: NodeId, args: list[object], _: bytes) -> None:
        owner = Owner(node, SocketId(str(args[0])))
        values = args[2]
        assert isinstance(values, list)
        self._service.remote_stream_event(owner, str(args[1]), tuple(values))

    def _chunk_from(self, node: NodeId, args: list[object], payload: bytes) -> None:
        """A chunk from another node's socket, for a stream kept here."""
        self._service.remote_chunk(Owner(node, SocketId(str(args[0]))), str(args[1]), payload)

    def _forget(self, node: NodeId, args: list[object], _: bytes) -> None:
        self._service.core.routes.forget(SocketId(str(args[0])), str(args[1]), bool(args[2]))

    def _gone(self, node: NodeId, args: list[object], _: bytes) -> None:
        self._service.remote_gone(Owner(node, SocketId(str(args[0]))))
        self.progress.pop(Owner(node, SocketId(str(args[0]))), None)

    def _pause(self, node: NodeId, args: list[object], _: bytes) -> None:
        source = Owner(self.node, SocketId(str(args[0])))
        if self._service.local_session(source.socket) is not None:
            self._service.hold(source, Asked(node, source))

    def _resume(self, node: NodeId, args: list[object], _: bytes) -> None:
        source = Owner(self.node, SocketId(str(args[0])))
        self._service.open_gate(Asked(node, source))

    def _sink_full(self, node: NodeId, args: list[object], _: bytes) -> None:
        sink = Owner(node, SocketId(str(args[0])))
        sent = int(str(args[1]))
        self.progress.setdefault(sink, sent)
        for source, _name in self._service.core.streams.feeding(sink):
            self._service.hold(source, sink, sent)

    def _sink_progress(self, node: NodeId, args: list[object], _: bytes) -> None:
        sink = Owner(node, SocketId(str(args[0])))
        if sink in self.progress:
            self.progress[sink] = int(str(args[1]))

    def _sink_drained(self, node: NodeId, args: list[object], _: bytes) -> None:
        sink = Owner(node, SocketId(str(args[0])))
        self.progress.pop(sink, None)
        self._service.open_gate(sink)
