"""Requests as clients send them: checked for shape and size, nothing more.

Each ``parse_*`` takes an event's arguments as decoded from JSON and returns a
typed request or the :class:`~wsstar.wire.reasons.Refusal` to answer with.
Whether a well-formed request is allowed (the crypto challenge, who owns an
address) is for the rules to decide; this module only keeps malformed or
oversized input away from them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from wsstar.identity.addresses import is_multiaddr
from wsstar.wire.reasons import (
    CHALLENGE_DATA_TOO_LONG,
    DIAL_SHAPE,
    JOIN_SHAPE,
    Reason,
    Refusal,
)

#: Longest address accepted; real ones are well under 300 characters.
MAX_ADDRESS_LENGTH = 1024
#: Longest hex public key or signature accepted (RSA-8192 keys are ~2.1 KB of hex).
MAX_CHALLENGE_DATA_LENGTH = 8192
MAX_DIAL_ID_LENGTH = 256

#: White space and control characters: no real address has them, js clients
#: fail to parse an announced address with them, and they forge log lines.
_UNPRINTABLE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """``ss-join``: an address and either a public key, a signature or nothing
    (hex; empty when the challenge is off)."""

    address: str
    data: str


@dataclass(frozen=True, slots=True)
class DialRequest:
    """``ss-dial``: relay a connection from one of our addresses to another peer."""

    from_addr: str
    to_addr: str
    dial_id: str


@dataclass(frozen=True, slots=True)
class LeaveRequest:
    """``ss-leave``: stop being reachable at an address."""

    address: str


def parse_join(args: Sequence[object]) -> JoinRequest | Refusal:
    address = args[0] if args else None
    data = args[1] if len(args) > 1 else None
    if not isinstance(address, str) or not isinstance(data, str):
        return Refusal(Reason.BAD_REQUEST, JOIN_SHAPE)
    if (
        len(address) > MAX_ADDRESS_LENGTH
        or _UNPRINTABLE.search(address)
        or not is_multiaddr(address)
    ):
        return Refusal(Reason.INVALID_MULTIADDR)
    if len(data) > MAX_CHALLENGE_DATA_LENGTH:
        return Refusal(Reason.BAD_REQUEST, CHALLENGE_DATA_TOO_LONG)
    return JoinRequest(address, data)


def parse_dial(args: Sequence[object]) -> DialRequest | Refusal:
    from_addr, to_addr, dial_id = [*args, None, None, None][:3]
    if (
        isinstance(from_addr, str)
        and isinstance(to_addr, str)
        and isinstance(dial_id, str)
        and 0 < len(dial_id) <= MAX_DIAL_ID_LENGTH
        and len(from_addr) <= MAX_ADDRESS_LENGTH
        and len(to_addr) <= MAX_ADDRESS_LENGTH
    ):
        return DialRequest(from_addr, to_addr, dial_id)
    return Refusal(Reason.BAD_REQUEST, DIAL_SHAPE)


def parse_leave(args: Sequence[object]) -> LeaveRequest | None:
    """None for anything but an address: the reference acks every leave with
    nothing, so a malformed one has nothing to be told."""
    address = args[0] if args else None
    return LeaveRequest(address) if isinstance(address, str) else None
