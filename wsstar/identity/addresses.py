"""Multiaddr checks for ``ss-join``, ``ss-dial`` and ``ws-peer`` arguments.

The server keys peers by the raw address string a client joined with and
echoes that string back in ``ws-peer``, join acks and ``ss-incomming``:
clients compare them byte for byte, so nothing here normalises anything.
These functions only classify strings.

Two levels of checking, as in the reference:

* :func:`is_multiaddr` is the argument check ("is this a multiaddr at all"),
  with js-multiaddr 6's leniency, so that a client whose address the
  reference accepted is not refused here;
* :func:`is_websocket_star` is the strict ``--strict-multiaddr`` check (mafmt's
  ``WebSocketStar`` shape), parsed with the ``multiaddr`` package.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from multiaddr import Multiaddr
from multiaddr.codecs import codec_by_name
from multiaddr.exceptions import Error as MultiaddrError
from multiaddr.protocols import protocol_with_name

from wsstar.identity.keys import BASE58_ALPHABET

#: Protocol name -> kind of value (None: takes no value).  The protocols a
#: WebSocketStar deployment meets; anything else is refused as unknown.
_PROTOCOLS: dict[str, str | None] = {
    "ip4": "ip4",
    "ip6": "ip6",
    "dns": "text",
    "dns4": "text",
    "dns6": "text",
    "dnsaddr": "text",
    "tcp": "port",
    "udp": "port",
    "ipfs": "base58",
    "p2p": "base58",
    "ws": None,
    "wss": None,
    "http": None,
    "https": None,
    "p2p-websocket-star": None,
    "p2p-webrtc-star": None,
    "p2p-webrtc-direct": None,
    "p2p-circuit": None,
}


def _load_codecs() -> None:
    # The multiaddr package imports a protocol's codec, and with the peer id
    # one cid, multihash and netaddr (some 3 MiB), the first time an address
    # needs it.  Loading them at start keeps the first join as fast as the
    # next, and a server's memory after serving where it started, apart from
    # what it holds.
    for name in _PROTOCOLS:
        codec_by_name(protocol_with_name("p2p" if name == "ipfs" else name).codec)


_load_codecs()

#: Addresses whose check results are remembered.  A join checks its address
#: twice, for the challenge and then with the answer, moments apart; a cache
#: much larger than the joins in flight would mostly keep departed peers'
#: addresses alive.
_CACHED = 512

_IP = ("ip4", "ip6")
_DNS = ("dns", "dns4", "dns6", "dnsaddr")


def _valid_value(kind: str, value: str) -> bool:
    if kind == "ip4":
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return False
        return True
    if kind == "ip6":
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            return False
        return True
    if kind == "port":
        # js parseInt: leading digits count, no digits means NaN -> 0, which
        # js-multiaddr 6 accepts; negative or > 65535 is refused.
        digits = value.lstrip()
        negative = digits.startswith("-")
        digits = digits[1:] if digits[:1] in ("+", "-") else digits
        end = 0
        while end < len(digits) and digits[end] in "0123456789":
            end += 1
        if end == 0:
            return True
        number = int(digits[:end])
        return number == 0 or (not negative and number <= 65535)
    if kind == "base58":
        return value != "" and all(c in BASE58_ALPHABET for c in value)
    return True


def _tokens(text: str) -> list[str]:
    return [part for part in text.strip().split("/") if part]


@lru_cache(maxsize=_CACHED)
def is_multiaddr(text: str) -> bool:
    """Whether js-multiaddr 6 would parse ``text``.

    Like it: the empty string and ``/`` are valid (empty multiaddrs), empty
    segments and trailing whitespace are ignored, a port that is not a
    number counts as 0, and an ipfs/p2p value may be any base58 string.
    """
    if text and not text.startswith("/"):
        return False
    tokens = _tokens(text)
    i = 0
    while i < len(tokens):
        name = tokens[i]
        if name not in _PROTOCOLS:
            return False
        kind = _PROTOCOLS[name]
        i += 1
        if kind is None:
            continue
        if i >= len(tokens) or not _valid_value(kind, tokens[i]):
            return False
        i += 1
    return True


def _protocol_names(text: str) -> list[str] | None:
    # The multiaddr package does not know the old "ipfs" name of code 421,
    # which is what js-multiaddr 6 (and so every deployed client) prints.
    # Rename it token by token, skipping values, so that a DNS name that
    # happens to be "ipfs" stays as it is.
    tokens = _tokens(text)
    renamed: list[str] = []
    i = 0
    while i < len(tokens):
        name = tokens[i]
        if name not in _PROTOCOLS:
            return None
        renamed.append("p2p" if name == "ipfs" else name)
        if _PROTOCOLS[name] is not None and i + 1 < len(tokens):
            renamed.append(tokens[i + 1])
            i += 1
        i += 1
    try:
        return [p.name for p in Multiaddr("/" + "/".join(renamed)).protocols()]
    except (MultiaddrError, ValueError, TypeError, KeyError, IndexError):
        return None


@lru_cache(maxsize=_CACHED)
def is_websocket_star(text: str) -> bool:
    """mafmt's ``WebSocketStar``: ``(IP tcp | DNS tcp | DNS) (ws|wss)
    p2p-websocket-star [ipfs|p2p]``.

    Stricter than js in one respect: a ``/p2p/`` value must be a real peer id
    (the multiaddr package checks it), where js accepted any base58 text; a
    string that is not a peer id could never pass the crypto challenge anyway.
    The port must be a number, too.
    """
    if not is_multiaddr(text):
        return False
    names = _protocol_names(text)
    if names is None or len(names) < 3:
        return False
    i = 0
    if names[0] in _IP:
        if names[1:2] != ["tcp"]:
            return False
        i = 2
    elif names[0] in _DNS:
        i = 2 if names[1] == "tcp" else 1
    else:
        return False
    rest = names[i:]
    return rest in (
        ["ws", "p2p-websocket-star"],
        ["wss", "p2p-websocket-star"],
        ["ws", "p2p-websocket-star", "p2p"],
        ["wss", "p2p-websocket-star", "p2p"],
    )


def claimed_peer_id(text: str) -> str | None:
    """The peer id an address claims: the value of its last ``ipfs``/``p2p``.

    The reference takes the text after the last ``ipfs/``; ``p2p/`` is
    accepted too because current libp2p prints that.  A trailing slash is
    ignored; an address without an id, or with an empty one, claims none.
    """
    tokens = _tokens(text)
    if len(tokens) >= 2 and tokens[-2] in ("ipfs", "p2p"):
        return tokens[-1]
    return None
