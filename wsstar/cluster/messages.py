"""What cluster nodes tell each other about the directory, and its wire form.

Every change to the shared directory is made by a Redis script that also
publishes it, so the messages on the channel are in the order Redis applied
the changes, each with the sequence number Redis gave the claim.  The scripts
write the JSON arrays below themselves (``cjson`` in Lua); this module reads
them, and writes the same form for the tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from wsstar.directory import NodeId, Owner, SocketId


@dataclass(frozen=True, slots=True)
class Claimed:
    """``owner`` joined ``address``; ``seq`` orders racing claims (higher wins)."""

    address: str
    owner: Owner
    seq: int


@dataclass(frozen=True, slots=True)
class Released:
    """``owner`` no longer holds ``address``, which it held since claim ``seq``."""

    address: str
    owner: Owner
    seq: int


@dataclass(frozen=True, slots=True)
class NodeDown:
    """``node`` stopped (cleanly, or declared dead when its liveness key
    expired): everything it owned is gone."""

    node: NodeId


Message = Claimed | Released | NodeDown


class BadMessage(ValueError):
    """A message on the cluster channel that is not one of ours."""


def decode(raw: bytes | str) -> Message:
    """The message a script published, or :class:`BadMessage`."""
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    match value:
        case ["claim", str(address), str(node), str(sock), int(seq)]:
            return Claimed(address, Owner(NodeId(node), SocketId(sock)), seq)
        case ["release", str(address), str(node), str(sock), int(seq)]:
            return Released(address, Owner(NodeId(node), SocketId(sock)), seq)
        case ["down", str(node)]:
            return NodeDown(NodeId(node))
    raise BadMessage(f"unknown message {str(value)[:80]!r}")


def encode(message: Message) -> str:
    """The form the scripts publish (used by tests, and to check they agree)."""
    match message:
        case Claimed(address, owner, seq):
            value: list[object] = ["claim", address, owner.node, owner.socket, seq]
        case Released(address, owner, seq):
            value = ["release", address, owner.node, owner.socket, seq]
        case NodeDown(node):
            value = ["down", node]
    return json.dumps(value, separators=(",", ":"))


def decode_entry(address: str, raw: bytes | str) -> Claimed:
    """A value of the shared address hash, ``[node, socket, seq]``."""
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    match value:
        case [str(node), str(sock), int(seq)]:
            return Claimed(address, Owner(NodeId(node), SocketId(sock)), seq)
    raise BadMessage(f"bad directory entry {str(value)[:80]!r}")
