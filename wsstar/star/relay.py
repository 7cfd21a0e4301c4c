"""The socket.io-pull-stream proxy, as a state machine without sockets.

A relayed connection is two independent half-streams, ``<dialId>.dialer``
(dialer -> listener bytes) and ``<dialId>.listener`` (listener -> dialer).
Each half-stream has a *source* socket that sends
``socket.io-pull-stream.queue.<name>`` chunks and finally
``socket.io-pull-stream.error.<name>`` (``true`` = normal end), and a *sink*
socket that first announces ``socket.io-pull-stream.accept.<name>`` and only
then may be sent chunks.  The server is in the middle: it tells the source
``accept`` as soon as the stream exists, holds chunks until the sink's own
``accept`` arrives, then forwards in order.

Streams are keyed by (owner, name) on each side, never by name alone:
names come from clients, and one client must not be able to inject chunks into
another's stream by guessing its dial id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsstar.directory import LOCAL_NODE, NodeId, Owner
from wsstar.star.effects import Emit
from wsstar.wire.events import ACCEPT, ERROR, QUEUE, StreamEvent, other_half
from wsstar.wire.reasons import Reason

#: What both sides are told when a stream is cut for holding too much unread data.
BACKLOG_OVERFLOW = Reason.RELAY_OVERFLOW.value


@dataclass(slots=True)
class _Stream:
    source: Owner
    sink: Owner
    name: str
    #: When the stream was opened (for unaccepted streams that expire).
    opened: float = 0.0
    accepted: bool = False
    source_done: bool = False
    # Events held until the sink accepts: (QUEUE, chunk) or (ERROR, value).
    backlog: list[tuple[StreamEvent, object]] = field(default_factory=list)
    backlog_bytes: int = 0


class StreamTable:
    """Every half-stream the server is relaying."""

    def __init__(self, node: NodeId = LOCAL_NODE) -> None:
        self._node = node
        #: Streams of other nodes' sockets this table has finished with, as
        #: (owner, name, whether the owner was its source): their nodes stop
        #: routing the socket's events for them here.  Drained by the I/O layer.
        self.departed: list[tuple[Owner, str, bool]] = []
        # socket -> stream name -> stream, on each side: a departing socket
        # finds its own streams without looking at anyone else's.
        self._by_source: dict[Owner, dict[str, _Stream]] = {}
        self._by_sink: dict[Owner, dict[str, _Stream]] = {}
        self._sink_count = 0
        #: Bytes held for receivers that have not accepted yet, by source.
        self._held: dict[Owner, int] = {}
        #: Streams cut because their receiver fell too far behind, or never
        #: accepted.
        self.overflows = 0

    def __len__(self) -> int:
        """Half-streams whose sink has not gone yet (a finished source may
        still have an end to deliver)."""
        return self._sink_count

    def exists(self, source: Owner, name: str) -> bool:
        return name in self._by_source.get(source, ())

    def receiving(self, sink: Owner, name: str) -> bool:
        """Whether ``sink`` already has a stream of that name coming in."""
        return name in self._by_sink.get(sink, ())

    def sending(self, source: Owner) -> int:
        """How many half-streams ``source`` feeds."""
        return len(self._by_source.get(source, ()))

    def held_bytes(self, source: Owner) -> int:
        """Bytes from ``source`` held until their receivers accept."""
        return self._held.get(source, 0)

    def held_total(self) -> int:
        return sum(self._held.values())

    def feeding(self, sink: Owner) -> list[tuple[Owner, str]]:
        """(source, name) of every stream still flowing into ``sink``."""
        return [
            (stream.source, name)
            for name, stream in self._by_sink.get(sink, {}).items()
            if not stream.source_done
        ]

    def open(self, source: Owner, sink: Owner, name: str, now: float) -> list[Emit]:
        """Start relaying ``name`` from ``source`` to ``sink``.

        The caller checks :meth:`exists` and :meth:`receiving` first; opening
        a stream twice would orphan the first one.
        """
        stream = _Stream(source, sink, name, now)
        self._by_source.setdefault(source, {})[name] = stream
        self._by_sink.setdefault(sink, {})[name] = stream
        self._sink_count += 1
        return [Emit(source, ACCEPT + name, ())]

    def discard(self, source: Owner, name: str) -> None:
        """Forget a stream that will never be used (its dial failed)."""
        stream = self._source_stream(source, name)
        if stream is not None:
            self._finish_source(stream)
            self._remove_sink_side(stream)

    def accept(self, sink: Owner, name: str) -> list[Emit]:
        stream = self._by_sink.get(sink, {}).get(name)
        if stream is None or stream.accepted:
            return []
        stream.accepted = True
        out = [self._deliver(stream, kind, value) for kind, value in stream.backlog]
        self._release_backlog(stream)
        if stream.source_done:
            self._remove_sink_side(stream)
        return out

    def open_sink(self, source: Owner, name: str) -> Owner | None:
        """The socket ``source``'s chunks for ``name`` go straight to, if the
        stream is flowing (its sink has accepted); None means the chunk must go
        through :meth:`queue`."""
        stream = self._source_stream(source, name)
        return stream.sink if stream is not None and stream.accepted else None

    def queue(self, source: Owner, name: str, chunk: bytes) -> list[Emit]:
        stream = self._source_stream(source, name)
        if stream is None:
            return []
        if stream.accepted:
            return [Emit(stream.sink, QUEUE + name, (chunk,))]
        # Held for the receiver; the I/O layer bounds what one source may
        # have held by pausing it (held_bytes), and unaccepted streams expire.
        stream.backlog_bytes += len(chunk)
        self._held[source] = self._held.get(source, 0) + len(chunk)
        stream.backlog.append((StreamEvent.QUEUE, chunk))
        return []

    def end(self, source: Owner, name: str, value: object) -> list[Emit]:
        """The source ended the stream: ``true`` for a normal end, else an error
        that is forwarded unchanged."""
        stream = self._source_stream(source, name)
        if stream is None:
            return []
        self._finish_source(stream)
        if stream.accepted:
            self._remove_sink_side(stream)
            return [Emit(stream.sink, ERROR + name, (value,))]
        stream.backlog.append((StreamEvent.ERROR, value))
        return []

    def cut(self, source: Owner, name: str) -> list[Emit]:
        """End a flowing stream whose receiver cannot keep up.

        Its sink is told :data:`BACKLOG_OVERFLOW` (after what it already has
        queued) and later chunks are dropped.  A pull-stream source cannot be
        told to stop, so the sender learns through the other half of the
        same connection, ``<dialId>.listener`` for ``<dialId>.dialer`` and the
        reverse, which is ended with the same error.
        """
        stream = self._source_stream(source, name)
        if stream is None:
            return []
        self.overflows += 1
        out = self.end(source, name, BACKLOG_OVERFLOW)
        other = other_half(name)
        if other is not None:
            out.extend(self.end(stream.sink, other, BACKLOG_OVERFLOW))
        return out

    def expire(self, now: float, max_age: float) -> list[Emit]:
        """Cut streams their receivers have not accepted within ``max_age``
        seconds of opening: what they hold would otherwise wait forever."""
        old = [
            stream
            for streams in self._by_sink.values()
            for stream in streams.values()
            if not stream.accepted and now - stream.opened >= max_age
        ]
        out: list[Emit] = []
        for stream in old:
            self.overflows += 1
            self._release_backlog(stream)
            other = other_half(stream.name)
            if not stream.source_done:
                self._finish_source(stream)
            self._remove_sink_side(stream)
            if other is not None:
                out.extend(self.end(stream.sink, other, BACKLOG_OVERFLOW))
        return out

    def drop_socket(self, owner: Owner) -> list[Emit]:
        """A socket is gone: end what it was sending, forget what it was receiving.

        Its outgoing streams end normally (``true``) toward their sinks, as
        the reference does.  Streams it was receiving are dropped: their
        sources' later chunks are ignored like any unknown stream's.
        """
        out: list[Emit] = []
        for name in list(self._by_source.get(owner, ())):
            out.extend(self.end(owner, name, True))
        for stream in list(self._by_sink.get(owner, {}).values()):
            self._finish_source(stream)
            self._remove_sink_side(stream)
        return out

    def _deliver(self, stream: _Stream, kind: StreamEvent, value: object) -> Emit:
        return Emit(stream.sink, kind.name_for(stream.name), (value,))

    def _source_stream(self, source: Owner, name: str) -> _Stream | None:
        streams = self._by_source.get(source)
        return streams.get(name) if streams is not None else None

    def _finish_source(self, stream: _Stream) -> None:
        stream.source_done = True
        if (
            _forget(self._by_source, stream.source, stream.name)
            and stream.source.node != self._node
        ):
            self.departed.append((stream.source, stream.name, True))

    def _remove_sink_side(self, stream: _Stream) -> None:
        self._release_backlog(stream)
        if _forget(self._by_sink, stream.sink, stream.name):
            self._sink_count -= 1
            if stream.sink.node != self._node:
                self.departed.append((stream.sink, stream.name, False))

    def owners_on(self, node: NodeId) -> set[Owner]:
        """The sockets of ``node`` that streams here come from or go to."""
        return {o for index in (self._by_source, self._by_sink) for o in index if o.node == node}

    def _release_backlog(self, stream: _Stream) -> None:
        if stream.backlog_bytes:
            left = self._held[stream.source] - stream.backlog_bytes
            if left:
                self._held[stream.source] = left
            else:
                del self._held[stream.source]
        stream.backlog.clear()
        stream.backlog_bytes = 0


def _forget(index: dict[Owner, dict[str, _Stream]], owner: Owner, name: str) -> bool:
    """Remove one entry, and the socket's map once it is empty so departed
    sockets leave nothing behind; True if the entry was there."""
    streams = index.get(owner)
    if streams is None or streams.pop(name, None) is None:
        return False
    if not streams:
        del index[owner]
    return True
