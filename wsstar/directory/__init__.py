"""The peer directory: which socket owns which joined address.

The rendezvous rules only ever ask the directory four things (who owns this
address, what does this socket own, who should hear an announcement, how many
addresses are joined) and change it two ways (claim, release).  Keeping that
behind :class:`PeerDirectory` is what lets a shared back-end for several server
processes replace :class:`LocalDirectory` without touching the rules, in the
same way python-socketio swaps its in-memory and message-queue managers.

Owners are opaque strings.  In a single process they are socket ids; a
clustered back-end can qualify them with a node id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator


class PeerDirectory(ABC):
    """Address -> owner and owner -> addresses, kept consistent with each other.

    Addresses are the raw strings clients joined with: the reference keys
    peers by the exact string, and clients dial and announce by it, so the
    directory never normalises them.
    """

    @abstractmethod
    def claim(self, address: str, owner: str) -> str | None:
        """Make ``owner`` own ``address``; return the previous owner if it changed.

        The last join wins: a client that reconnects joins again from a new
        socket while the old one may still be timing out, and the new socket
        must take the address over.
        """

    @abstractmethod
    def release(self, address: str, owner: str) -> bool:
        """Drop ``address`` if, and only if, ``owner`` still owns it."""

    @abstractmethod
    def owner(self, address: str) -> str | None:
        """The socket that owns ``address`` now, if any."""

    @abstractmethod
    def owned_by(self, owner: str) -> Collection[str]:
        """Addresses ``owner`` owns now (not those it lost to a later join)."""

    @abstractmethod
    def owners(self) -> Collection[str]:
        """Every socket that owns at least one address."""

    @abstractmethod
    def addresses(self) -> Iterator[str]:
        """Every joined address."""

    @abstractmethod
    def __len__(self) -> int:
        """How many addresses are joined."""

    def release_all(self, owner: str) -> list[str]:
        """Drop everything ``owner`` still owns and say what was dropped."""
        dropped = list(self.owned_by(owner))
        for address in dropped:
            self.release(address, owner)
        return dropped


class LocalDirectory(PeerDirectory):
    """The in-memory directory of a single server process."""

    def __init__(self) -> None:
        self._owner_of: dict[str, str] = {}
        self._owned: dict[str, set[str]] = {}

    def claim(self, address: str, owner: str) -> str | None:
        previous = self._owner_of.get(address)
        if previous == owner:
            return None
        if previous is not None:
            self._forget(previous, address)
        self._owner_of[address] = owner
        self._owned.setdefault(owner, set()).add(address)
        return previous

    def release(self, address: str, owner: str) -> bool:
        if self._owner_of.get(address) != owner:
            return False
        del self._owner_of[address]
        self._forget(owner, address)
        return True

    def owner(self, address: str) -> str | None:
        return self._owner_of.get(address)

    def owned_by(self, owner: str) -> Collection[str]:
        return frozenset(self._owned.get(owner, ()))

    def owners(self) -> Collection[str]:
        return self._owned.keys()

    def addresses(self) -> Iterator[str]:
        return iter(self._owner_of)

    def __len__(self) -> int:
        return len(self._owner_of)

    def _forget(self, owner: str, address: str) -> None:
        owned = self._owned[owner]
        owned.discard(address)
        if not owned:
            # An owner with nothing left must not linger: owners() is the
            # announcement fan-out, and a disconnected socket would leak here.
            del self._owned[owner]
