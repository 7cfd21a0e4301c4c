"""The in-memory directory of a server that is not part of a cluster."""

from __future__ import annotations

import random
from collections.abc import Collection, Iterator

from wsstar.directory import LOCAL_NODE, NodeId, Owner, PeerDirectory, SocketId


class MemoryDirectory(PeerDirectory):
    """Every owner is a socket of this process."""

    def __init__(self, node: NodeId = LOCAL_NODE) -> None:
        self.node = node
        self._owner_of: dict[str, Owner] = {}
        #: The joined addresses in no particular order, and where each is in
        #: it, so that a random sample costs what it holds.
        self._slots: list[str] = []
        self._slot_of: dict[str, int] = {}
        self._owned: dict[Owner, set[str]] = {}
        #: The same sets as ``_owned``, by socket, for this node's owners.
        self._local: dict[SocketId, set[str]] = {}

    def owner(self, address: str) -> Owner | None:
        return self._owner_of.get(address)

    def addresses(self) -> Iterator[str]:
        return iter(self._owner_of)

    def __len__(self) -> int:
        return len(self._owner_of)

    def newest(self) -> Iterator[str]:
        return reversed(self._owner_of)

    def sample(self, count: int, rng: random.Random) -> list[str]:
        slots = self._slots
        if count >= len(slots):
            return list(slots)
        return [slots[i] for i in rng.sample(range(len(slots)), count)]

    def owner_count(self) -> int:
        return len(self._owned)

    def claim(self, address: str, owner: Owner) -> Owner | None:
        previous = self._owner_of.get(address)
        if previous == owner:
            return None
        if previous is not None:
            self._forget(previous, address)
            del self._owner_of[address]  # a takeover is a join: it is the newest now
        else:
            self._slot_of[address] = len(self._slots)
            self._slots.append(address)
        self._owner_of[address] = owner
        owned = self._owned.get(owner)
        if owned is None:
            owned = self._owned[owner] = set()
            if owner.node == self.node:
                self._local[owner.socket] = owned
        owned.add(address)
        return previous

    def release(self, address: str, owner: Owner) -> bool:
        if self._owner_of.get(address) != owner:
            return False
        del self._owner_of[address]
        # The last slot fills the hole, so removal stays O(1).
        slot = self._slot_of.pop(address)
        last = self._slots.pop()
        if last != address:
            self._slots[slot] = last
            self._slot_of[last] = slot
        self._forget(owner, address)
        return True

    def owners(self) -> Collection[Owner]:
        """Every owner of at least one address, on any node."""
        return self._owned.keys()

    def owned_by(self, owner: Owner) -> Collection[str]:
        return frozenset(self._owned.get(owner, ()))

    def local_sockets(self) -> Collection[SocketId]:
        return self._local.keys()

    def _forget(self, owner: Owner, address: str) -> None:
        owned = self._owned[owner]
        owned.discard(address)
        if not owned:
            # An owner with nothing left must not linger: local_sockets() is
            # the announcement fan-out, and a disconnected socket would leak.
            del self._owned[owner]
            if owner.node == self.node:
                del self._local[owner.socket]
