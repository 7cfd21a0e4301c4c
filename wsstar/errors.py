"""Error strings clients see, and the exceptions wsstar raises.

The first group is the reference server's wording, byte for byte: deployed
clients surface these as ``err.message`` and some applications match on them.
The second group is ours, for cases where the reference answers ``{}``, hangs
or says nothing; each is listed in PROTOCOL.md.
"""

from __future__ import annotations

# -- the reference's own strings ---------------------------------------------
INVALID_MULTIADDR = "Invalid multiaddr"
NO_ID_PROVIDED = "Crypto Challenge required but no Id provided"
CRYPTO_ERROR = "Crypto error"
SIGNATURE_INVALID = "Signature Invalid"
NOT_AUTHORIZED = "Not authorized for this address"
PEER_NOT_FOUND = "Peer not found"

# -- ours ------------------------------------------------------------------------
NO_PEER_ID_IN_ADDRESS = "Address has no /ipfs/ or /p2p/ peer id"
INVALID_PUBLIC_KEY = "Invalid public key"
ID_MISMATCH = "Peer id in address does not match the public key"
CHALLENGE_EXPIRED = "Crypto challenge expired"
PEER_NOT_ALLOWED = "Peer not allowed on this server"
TOO_MANY_CHALLENGES = "Too many pending crypto challenges on this connection"
TOO_MANY_ADDRESSES = "Too many addresses joined on this connection"
TOO_MANY_DIALS = "Too many dials in flight on this connection"
DIAL_ID_IN_USE = "Dial id already in use"
DIAL_TIMEOUT = "Dial timed out: the listener did not answer"
DIAL_TARGET_GONE = "Peer disconnected during dial"
BAD_REQUEST = "Bad request"
EVENT_NAME_MISSING = f"{BAD_REQUEST}: event name missing"


class WsstarError(Exception):
    """Base of the exceptions wsstar raises on purpose."""


class ConfigError(WsstarError):
    """The server cannot start with the settings given (bad flag, unreadable file)."""


class ProtocolError(WsstarError):
    """A peer sent something that is not valid Engine.IO / Socket.IO framing.

    The connection it arrived on is closed; nothing else is affected.
    """
