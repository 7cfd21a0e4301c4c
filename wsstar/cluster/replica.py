"""A cluster node's directory: the whole swarm, replicated in memory.

Local joins and departures change the replica at once (a join ack must not
wait on Redis) and are queued in :attr:`ClusterDirectory.outbox` for the bus
to publish.  Changes made on other nodes arrive as
:mod:`~wsstar.cluster.messages` and are applied with :meth:`apply`.

Which of two racing claims of one address wins is decided by the order in
which Redis ran their scripts: every claim gets the next number of one
counter, and the channel delivers the messages in that order.  A node
therefore ignores a remote claim of an address it has claimed itself and
not yet seen confirmed: its own claim ran later, or has not run at all, so it
is the newer one everywhere, and the hash in Redis agrees.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from wsstar.cluster.messages import Claimed, Message, NodeDown, Released
from wsstar.directory import NodeId, Owner
from wsstar.directory.memory import MemoryDirectory


@dataclass(frozen=True, slots=True)
class Publish:
    """A local change the bus must make in Redis: ``kind`` is "claim" or "release"."""

    kind: str
    address: str
    owner: Owner


@dataclass(slots=True)
class Change:
    """What applying remote messages changed: addresses that are new to this
    node's view (to announce) and addresses gone from it."""

    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.joined or self.left)


class ClusterDirectory(MemoryDirectory):
    """The swarm as this node knows it, from its own changes and the bus's."""

    def __init__(self, node: NodeId) -> None:
        super().__init__(node)
        #: Changes of this node's sockets not yet made in Redis, in order.
        self.outbox: deque[Publish] = deque()
        #: Called when the outbox gains an entry (the bus's wake-up).
        self.notify: Callable[[], None] = lambda: None
        #: Address → the sequence number of its claim; None while a claim of
        #: this node's is on its way.
        self._seq: dict[str, int | None] = {}
        #: While resynchronising: releases seen (address → claim seq), so that
        #: a snapshot read before them cannot bring their addresses back, and
        #: addresses messages set meanwhile, which the snapshot may lack.
        self._released: dict[str, int] | None = None
        self._touched: set[str] = set()

    # -- local changes ------------------------------------------------------------

    def claim(self, address: str, owner: Owner) -> Owner | None:
        previous = super().claim(address, owner)
        if owner.node == self.node:
            self._seq[address] = None
            self._publish(Publish("claim", address, owner))
        return previous

    def release(self, address: str, owner: Owner) -> bool:
        if not super().release(address, owner):
            return False
        self._seq.pop(address, None)
        if owner.node == self.node:
            self._publish(Publish("release", address, owner))
        return True

    def _publish(self, change: Publish) -> None:
        self.outbox.append(change)
        self.notify()

    # -- remote changes -----------------------------------------------------------

    def apply(self, message: Message) -> Change:
        """Apply one message from the channel (or one snapshot entry)."""
        change = Change()
        match message:
            case Claimed():
                self._apply_claim(message, change)
            case Released(address, owner, seq):
                if self._released is not None:
                    self._released[address] = max(seq, self._released.get(address, 0))
                if owner.node != self.node and self.owner(address) == owner:
                    self._drop(address, owner, change)
            case NodeDown(node):
                if node != self.node:
                    self.drop_node(node, change)
                else:
                    # Declared dead while alive (a pause longer than the
                    # liveness TTL): Redis dropped our claims, so make them again.
                    self._claim_all_again()
        return change

    def _apply_claim(self, message: Claimed, change: Change) -> None:
        address, owner, seq = message.address, message.owner, message.seq
        current = self.owner(address)
        if owner.node == self.node:
            # Our own claim, confirmed: from now on it is compared by number.
            if current == owner and self._seq.get(address) is None:
                self._seq[address] = seq
            return
        if current is not None and current.node == self.node and self._seq.get(address) is None:
            return  # ours is on its way, and newer
        known = self._seq.get(address)
        if known is not None and seq <= known:
            return  # a stale snapshot entry, or a repeat
        if self._released is not None:
            if seq <= self._released.get(address, 0):
                return
            self._touched.add(address)
        if current == owner:
            self._seq[address] = seq
            return
        super().claim(address, owner)
        self._seq[address] = seq
        change.joined.append(address)

    def _drop(self, address: str, owner: Owner, change: Change) -> None:
        super().release(address, owner)
        self._seq.pop(address, None)
        change.left.append(address)

    def drop_node(self, node: NodeId, change: Change | None = None) -> Change:
        """Forget everything ``node`` owns (it stopped, or its liveness lapsed)."""
        change = change if change is not None else Change()
        for owner in [o for o in self.owners() if o.node == node]:
            for address in list(self.owned_by(owner)):
                self._drop(address, owner, change)
        return change

    def remote_nodes(self) -> set[NodeId]:
        """The other nodes that own something in this node's view."""
        return {o.node for o in self.owners() if o.node != self.node}

    # -- resynchronisation --------------------------------------------------------

    def begin_resync(self) -> None:
        """The bus (re)subscribed and is about to read the whole hash."""
        self._released = {}
        self._touched = set()

    def end_resync(self, snapshot: Iterable[Claimed]) -> Change:
        """Bring the replica in line with ``snapshot`` (the hash, read after
        subscribing) and queue in the outbox what Redis lacks of this node's
        own: claims made while it was unreachable, releases it missed."""
        change = Change()
        seen: set[str] = set()
        for entry in snapshot:
            seen.add(entry.address)
            if entry.owner.node == self.node:
                if self.owner(entry.address) != entry.owner:
                    # Ours in Redis but not here: released while Redis was away.
                    self._publish(Publish("release", entry.address, entry.owner))
                continue
            self._apply_claim(entry, change)
        seen |= self._touched
        for owner in [o for o in self.owners() if o.node != self.node]:
            for address in list(self.owned_by(owner)):
                if address not in seen:
                    self._drop(address, owner, change)
        self._released = None
        self._touched = set()
        # Every local claim is made again, so that Redis holds them all;
        # the last join wins, as it would have had Redis been there.
        self._claim_all_again()
        return change

    def _claim_all_again(self) -> None:
        for sid in list(self.local_sockets()):
            owner = Owner(self.node, sid)
            for address in self.owned_by(owner):
                self._seq[address] = None
                self._publish(Publish("claim", address, owner))
