"""What the server answers, as types, and the ack arguments clients expect.

The rules return these; the I/O layer turns them into ack arguments with the
functions below, the only place that knows the reference's positional shapes
(``[null, nonce]``, ``[null, null, peers]``, ``[error]``, ``[]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from wsstar.wire.reasons import Refusal


@dataclass(frozen=True, slots=True)
class Challenge:
    """The first step of a challenge join: sign this nonce."""

    nonce: str


@dataclass(frozen=True, slots=True)
class Joined:
    """The address is joined; ``peers`` are the other joined addresses
    (those listed), ``listed`` their JSON array as the ack carries it."""

    peers: list[str]
    listed: bytes


@dataclass(frozen=True, slots=True)
class ListenerError:
    """The listener answered ``ss-incomming`` with an error of its own,
    which reaches the dialer unchanged."""

    value: object


@dataclass(frozen=True, slots=True)
class Connected:
    """The listener accepted the dial; relaying starts."""


JoinReply = Challenge | Joined | Refusal
DialReply = Connected | Refusal | ListenerError

CONNECTED = Connected()


def join_ack(reply: JoinReply) -> tuple[object, ...]:
    match reply:
        case Challenge(nonce):
            return (None, nonce)
        case Joined(peers):
            return (None, None, peers)
        case Refusal():
            return (reply.text,)
        case _:
            assert_never(reply)


def dial_ack(reply: DialReply) -> tuple[object, ...]:
    match reply:
        case Connected():
            return ()
        case Refusal():
            return (reply.text,)
        case ListenerError(value):
            return (value,)
        case _:
            assert_never(reply)


def refusal_ack(refusal: Refusal) -> tuple[object, ...]:
    """The ack of any other refused request."""
    return (refusal.text,)
