"""Relay flow control: which relay sources are held paused, and why.

A public relay must neither lose data nor hold it without bound.  When the
data waiting for a receiver passes a high-water mark, the server stops
reading from the socket that sent it, so TCP back-pressure reaches the
sender, and reads again once the receiver has drained below a low-water
mark.  A receiver that takes nothing at all for the stall timeout has the
streams feeding it cut instead: holding a sender forever helps nobody.

A source can be held by several *gates* at once (one per receiver it feeds
that is full, one for its own chunks held before a receiver accepted, one for
the server-wide bound, one for a full link to another cluster node, one per
node that asked for it to be held) and is read again only when every gate
has opened.  Sources are owners: in a cluster, a node holds another node's
socket by asking that node to pause it.
This module only keeps that bookkeeping; the service measures the queues and
pauses and resumes sockets.  Plain synchronous code, time given by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsstar.directory import NodeId, Owner


@dataclass(frozen=True, slots=True)
class Held:
    """The gate of a source's own chunks held before their receiver accepted."""

    source: Owner


@dataclass(frozen=True, slots=True)
class Link:
    """The gate of the link to another cluster node, while it is full."""

    node: NodeId


@dataclass(frozen=True, slots=True)
class Asked:
    """The gate another node closed on one of this node's sockets: a receiver
    there is full, or holds too much of this source's data."""

    node: NodeId
    source: Owner


#: The gate of the server-wide bound on relayed data.
GLOBAL = "global"

Gate = Owner | Held | Link | Asked | str


@dataclass(slots=True)
class _Watch:
    """A full receiver: since when it has made no progress, and how far it had got."""

    since: float
    mark: int


class FlowControl:
    """Sources held paused, by the gates that hold them."""

    def __init__(self, stall_timeout: float) -> None:
        self.stall_timeout = stall_timeout
        self._holding: dict[Gate, set[Owner]] = {}
        self._held_by: dict[Owner, set[Gate]] = {}
        self._watch: dict[Owner, _Watch] = {}

    def __len__(self) -> int:
        """How many sources are held paused."""
        return len(self._held_by)

    def hold(self, source: Owner, gate: Gate, now: float = 0.0, progress: int = 0) -> bool:
        """Hold ``source`` at ``gate``; True if it was not held before (so it
        must be paused now).  For a receiver gate, ``progress`` is how much it
        has taken so far, for stall detection."""
        newly = source not in self._held_by
        self._holding.setdefault(gate, set()).add(source)
        self._held_by.setdefault(source, set()).add(gate)
        if isinstance(gate, Owner) and gate not in self._watch:
            self._watch[gate] = _Watch(now, progress)
        return newly

    def holds(self, gate: Gate) -> bool:
        return gate in self._holding

    def open(self, gate: Gate) -> list[Owner]:
        """``gate`` opened (a receiver drained, held chunks went out): the
        sources that no other gate holds, to be read again."""
        self._watch.pop(gate, None)  # type: ignore[arg-type]
        free: list[Owner] = []
        for source in self._holding.pop(gate, ()):
            gates = self._held_by[source]
            gates.discard(gate)
            if not gates:
                del self._held_by[source]
                free.append(source)
        return free

    def stalled(self, now: float, progress: dict[Owner, int]) -> list[Owner]:
        """Full receivers that have taken nothing for the stall timeout.

        ``progress`` says how much each watched receiver has taken so far;
        one missing from it is gone and counts as stalled.
        """
        out = []
        for sink, watch in self._watch.items():
            taken = progress.get(sink)
            if taken is None:
                out.append(sink)
            elif taken != watch.mark:
                watch.mark, watch.since = taken, now
            elif now - watch.since >= self.stall_timeout:
                out.append(sink)
        return out

    def held_gates(self) -> list[Held]:
        """The gates of sources' own held chunks that are closed now."""
        return [gate for gate in self._holding if isinstance(gate, Held)]

    def watched(self) -> list[Owner]:
        """The receivers whose progress :meth:`stalled` needs."""
        return list(self._watch)

    def gates(self) -> list[Gate]:
        """Every gate closed now."""
        return list(self._holding)

    def forget(self, source: Owner) -> None:
        """A socket is gone: it holds nobody any more as a receiver is the
        caller's business (open its gate); here it stops being a source."""
        for gate in self._held_by.pop(source, ()):
            holding = self._holding.get(gate)
            if holding is not None:
                holding.discard(source)
                if not holding:
                    del self._holding[gate]
                    self._watch.pop(gate, None)  # type: ignore[arg-type]
