"""Dials and streams of this node's sockets whose state another node keeps.

A relayed connection between sockets on two cluster nodes is kept, whole, by
the dialer's node: its rules hold the dial and both half-streams, exactly as
for two local sockets.  The listener's node only needs to know where to send
what its socket says about them: the answer to ``ss-incomming``, the accept
of the stream it receives, and the chunks and end of the stream it sends.
This table says that, per socket, and counts what the per-listener limits
need.  Plain synchronous code, like the rest of the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsstar.directory import NodeId, SocketId
from wsstar.wire.events import DIALER_HALF, LISTENER_HALF


@dataclass(frozen=True, slots=True)
class Asked:
    """A dial another node asked one of this node's sockets to accept."""

    node: NodeId
    dialer: SocketId
    dial_id: str


@dataclass(slots=True)
class _Socket:
    #: Streams this socket receives, by name: whose node to tell its accept.
    sink: dict[str, NodeId] = field(default_factory=dict)
    #: Streams this socket sends, by name: where its chunks and end go.
    source: dict[str, NodeId] = field(default_factory=dict)
    #: ``ss-incomming`` sent on another node's behalf, by its ack id.
    asked: dict[int, Asked] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.sink or self.source or self.asked)


class Routes:
    """Per socket of this node: the remote dials and streams it takes part in."""

    def __init__(self) -> None:
        self._sockets: dict[SocketId, _Socket] = {}

    def __len__(self) -> int:
        """Routes and asked dials held (zero once every relay has ended)."""
        return sum(len(s.sink) + len(s.source) + len(s.asked) for s in self._sockets.values())

    def sink(self, sid: SocketId, name: str) -> NodeId | None:
        routes = self._sockets.get(sid)
        return routes.sink.get(name) if routes is not None else None

    def source(self, sid: SocketId, name: str) -> NodeId | None:
        routes = self._sockets.get(sid)
        return routes.source.get(name) if routes is not None else None

    def pending(self, sid: SocketId) -> int:
        """Remote dials waiting for this socket's answer."""
        routes = self._sockets.get(sid)
        return len(routes.asked) if routes is not None else 0

    def sending(self, sid: SocketId) -> int:
        """Streams this socket sends whose state is on other nodes."""
        routes = self._sockets.get(sid)
        return len(routes.source) if routes is not None else 0

    def taken(self, sid: SocketId, dial_id: str) -> bool:
        """Whether a remote relay of this socket already uses ``dial_id``."""
        routes = self._sockets.get(sid)
        if routes is None:
            return False
        return (
            dial_id + DIALER_HALF in routes.sink
            or dial_id + LISTENER_HALF in routes.source
            or any(asked.dial_id == dial_id for asked in routes.asked.values())
        )

    def ask(self, sid: SocketId, ack_id: int, asked: Asked) -> None:
        """``ss-incomming`` went to ``sid`` for ``asked``: the stream from the
        dialer is accepted through ``asked.node``."""
        routes = self._sockets.setdefault(sid, _Socket())
        routes.asked[ack_id] = asked
        routes.sink[asked.dial_id + DIALER_HALF] = asked.node

    def answered(self, sid: SocketId, ack_id: int, connected: bool) -> Asked | None:
        """The socket answered; if it accepted, the stream back to the dialer
        goes through the same node."""
        routes = self._sockets.get(sid)
        asked = routes.asked.pop(ack_id, None) if routes is not None else None
        if asked is None or routes is None:
            return None
        if connected:
            routes.source[asked.dial_id + LISTENER_HALF] = asked.node
        else:
            self._drop(sid, routes, asked)
        return asked

    def cancel(self, sid: SocketId, asked: Asked) -> None:
        """The dialer's node gave up on the dial (timeout, dialer gone)."""
        routes = self._sockets.get(sid)
        if routes is None:
            return
        for ack_id, other in list(routes.asked.items()):
            if other == asked:
                del routes.asked[ack_id]
        self._drop(sid, routes, asked)

    def forget(self, sid: SocketId, name: str, as_source: bool) -> None:
        """The owning node finished one stream of this socket."""
        routes = self._sockets.get(sid)
        if routes is None:
            return
        (routes.source if as_source else routes.sink).pop(name, None)
        if not routes:
            del self._sockets[sid]

    def drop_socket(self, sid: SocketId) -> set[NodeId]:
        """The socket is gone: forget its routes; the nodes to tell."""
        routes = self._sockets.pop(sid, None)
        if routes is None:
            return set()
        return {
            *routes.sink.values(),
            *routes.source.values(),
            *(asked.node for asked in routes.asked.values()),
        }

    def drop_node(self, node: NodeId) -> None:
        """``node`` is gone: every route through it goes."""
        for sid, routes in list(self._sockets.items()):
            routes.sink = {n: o for n, o in routes.sink.items() if o != node}
            routes.source = {n: o for n, o in routes.source.items() if o != node}
            routes.asked = {a: x for a, x in routes.asked.items() if x.node != node}
            if not routes:
                del self._sockets[sid]

    def _drop(self, sid: SocketId, routes: _Socket, asked: Asked) -> None:
        for table, name in (
            (routes.sink, asked.dial_id + DIALER_HALF),
            (routes.source, asked.dial_id + LISTENER_HALF),
        ):
            if table.get(name) == asked.node:
                del table[name]
        if not routes:
            del self._sockets[sid]
