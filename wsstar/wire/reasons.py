"""Every string a client can see: the reasons a request is refused.

One module, so that a wording is changed in one place and a client (ours or
an application matching on ``err.message``) can rely on the list.  The rules
decide on :class:`Reason` members, never on text; the text is made only when
an ack is written.

The first group is the reference server's wording, byte for byte: deployed
clients surface these as ``err.message`` and some applications match on them.
The rest are ours, for cases where the reference answers ``{}``, hangs or says
nothing; each is listed in PROTOCOL.md.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Reason(enum.Enum):
    """Why a request was refused; the value is the text clients see."""

    # -- the reference's own strings ----------------------------------------
    INVALID_MULTIADDR = "Invalid multiaddr"
    NO_ID_PROVIDED = "Crypto Challenge required but no Id provided"
    CRYPTO_ERROR = "Crypto error"
    SIGNATURE_INVALID = "Signature Invalid"
    NOT_AUTHORIZED = "Not authorized for this address"
    PEER_NOT_FOUND = "Peer not found"

    # -- ours ----------------------------------------------------------------
    NO_PEER_ID_IN_ADDRESS = "Address has no /ipfs/ or /p2p/ peer id"
    INVALID_PUBLIC_KEY = "Invalid public key"
    ID_MISMATCH = "Peer id in address does not match the public key"
    CHALLENGE_EXPIRED = "Crypto challenge expired"
    PEER_NOT_ALLOWED = "Peer not allowed on this server"
    TOO_MANY_CHALLENGES = "Too many pending crypto challenges on this connection"
    TOO_MANY_ADDRESSES = "Too many addresses joined on this connection"
    TOO_MANY_DIALS = "Too many dials in flight on this connection"
    TOO_MANY_STREAMS = "Too many relayed streams on this connection"
    LISTENER_BUSY = "Too many dials waiting for this peer"
    DIAL_ID_IN_USE = "Dial id already in use"
    DIAL_TIMEOUT = "Dial timed out: the listener did not answer"
    DIAL_TARGET_GONE = "Peer disconnected during dial"
    BAD_REQUEST = "Bad request"
    UNKNOWN_EVENT = "Unknown event"
    INTERNAL_ERROR = "Internal server error"
    JOIN_RATE_LIMITED = "Rate limit exceeded: too many joins from this address"
    DIAL_RATE_LIMITED = "Rate limit exceeded: too many dials from this address"
    EVENT_RATE_LIMITED = "Rate limit exceeded: too many requests on this connection"
    #: Sent down a relayed stream (not as an ack) when it is cut.
    RELAY_OVERFLOW = "Relay buffer limit exceeded"


# Details that follow "Bad request: ".
JOIN_SHAPE = "ss-join expects (multiaddr, string)"
CHALLENGE_DATA_TOO_LONG = "challenge data too long"
DIAL_SHAPE = "ss-dial expects (multiaddr, multiaddr, dial id)"
EVENT_NAME_MISSING = "event name missing"

#: Longest client-chosen text echoed back in a detail (an unknown event name).
MAX_ECHOED = 64


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused request: a reason and, for some reasons, a detail."""

    reason: Reason
    detail: str = ""

    @property
    def text(self) -> str:
        """What the client sees as the error of its ack."""
        if not self.detail:
            return self.reason.value
        return f"{self.reason.value}: {self.detail}"


def unknown_event(name: str) -> Refusal:
    """The answer to an event this server does not know, naming it (shortened)."""
    return Refusal(Reason.UNKNOWN_EVENT, shorten(name, MAX_ECHOED))


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked when it was cut."""
    return text if len(text) <= limit else text[:limit] + "…"


class KeyProblem(enum.Enum):
    """Why a public key cannot be used: the detail of :attr:`Reason.INVALID_PUBLIC_KEY`.

    Some carry a value (a wire type, a key type), filled in with
    :meth:`str.format`.
    """

    TRUNCATED_VARINT = "truncated varint"
    VARINT_TOO_LONG = "varint too long"
    FIELD_TOO_LONG = "field length exceeds the key"
    TRUNCATED_FIXED = "truncated fixed-size field"
    WIRE_TYPE = "unsupported protobuf wire type {}"
    FIELD_ZERO = "invalid protobuf field number 0"
    MISSING_FIELD = "missing key type or key data"
    ED25519_SIZE = "an Ed25519 key is 32 bytes"
    SECP256K1_SIZE = "a secp256k1 key is a 33 or 65 byte point"
    TYPE_MISMATCH = "the key data does not match the key type"
    BAD_DATA = "bad {} key data"
    KEY_TYPE = "unsupported key type {}"
    RSA_SIZE = "an RSA key must have 2048 to 4096 bits"
    RSA_EXPONENT = "an RSA key must have the public exponent 65537"
