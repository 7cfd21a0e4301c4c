"""The peer directory: which socket, on which node, owns which joined address.

The rendezvous rules ask the directory two kinds of question, kept apart so
that a back-end shared by several server processes can answer each the right
way:

* about the **swarm**: who owns this address, every joined address, how many
  owners there are: what a join ack lists and a dial looks up;
* about **this node's sockets**: which of them own an address (the sockets an
  announcement is written to) and what one of them owns.

Owners are :class:`Owner` values, a node id and a socket id, so that an
effect can be addressed to a socket on another node.  In a single process
every owner is on :data:`LOCAL_NODE`.

The interface is synchronous on purpose: join acks, announcements and dial
look-ups are the hot path and must not wait on a network round trip.  A
shared back-end keeps a replica of the swarm in memory, answers from it, and
publishes this node's claims and releases behind the scenes, in the way
python-socketio's message-queue managers sit behind the same interface as its
in-memory one.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator
from typing import NamedTuple, NewType

#: A server process in a swarm.
NodeId = NewType("NodeId", str)
#: A Socket.IO connection of one node (python-socketio's ``sid``).
SocketId = NewType("SocketId", str)

#: The node id of a server that is not part of a cluster.
LOCAL_NODE = NodeId("local")


class Owner(NamedTuple):
    """A socket anywhere in the swarm: the node it is connected to, and its id there."""

    node: NodeId
    socket: SocketId


class PeerDirectory(ABC):
    """Address -> owner and owner -> addresses, kept consistent with each other.

    Addresses are the raw strings clients joined with: the reference keys
    peers by the exact string, and clients dial and announce by it, so the
    directory never normalises them.
    """

    #: The node this directory serves; owners on it are local sockets.
    node: NodeId = LOCAL_NODE

    # -- the swarm -------------------------------------------------------------

    @abstractmethod
    def owner(self, address: str) -> Owner | None:
        """Who owns ``address`` now, if anyone."""

    @abstractmethod
    def addresses(self) -> Iterator[str]:
        """Every joined address."""

    @abstractmethod
    def __len__(self) -> int:
        """How many addresses are joined."""

    @abstractmethod
    def newest(self) -> Iterator[str]:
        """Joined addresses, the most recently joined first."""

    @abstractmethod
    def sample(self, count: int, rng: random.Random) -> list[str]:
        """``count`` joined addresses chosen at random (all, if fewer are
        joined), in time proportional to ``count`` rather than to the swarm:
        a join ack in a large swarm is made of such a sample."""

    @abstractmethod
    def owner_count(self) -> int:
        """How many sockets own at least one address."""

    # -- changes -----------------------------------------------------------------

    @abstractmethod
    def claim(self, address: str, owner: Owner) -> Owner | None:
        """Make ``owner`` own ``address``; return the previous owner if it changed.

        The last join wins: a client that reconnects joins again from a new
        socket while the old one may still be timing out, and the new socket
        must take the address over.
        """

    @abstractmethod
    def release(self, address: str, owner: Owner) -> bool:
        """Drop ``address`` if, and only if, ``owner`` still owns it."""

    def release_all(self, owner: Owner) -> list[str]:
        """Drop everything ``owner`` still owns and say what was dropped."""
        dropped = list(self.owned_by(owner))
        for address in dropped:
            self.release(address, owner)
        return dropped

    # -- this node's sockets -------------------------------------------------------

    @abstractmethod
    def owned_by(self, owner: Owner) -> Collection[str]:
        """Addresses ``owner`` owns now (not those it lost to a later join)."""

    @abstractmethod
    def local_sockets(self) -> Collection[SocketId]:
        """This node's sockets that own at least one address: the ones an
        announcement is written to."""


__all__ = ["LOCAL_NODE", "NodeId", "Owner", "PeerDirectory", "SocketId"]
