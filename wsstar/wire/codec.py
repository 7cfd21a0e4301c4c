"""Socket.IO text packets of the hot paths, encoded and decoded directly.

Almost every packet a rendezvous server handles is an event or an ack on the
default namespace without binary data (``2["ss-dial",…]``, ``3[null]``); a
dial alone is eight of them.  python-socketio turns each into a ``Packet``
object, walks its data looking for binary, and builds a fresh JSON encoder or
decoder per call (non-default ``json`` arguments do that).  Here the same text
is produced and read with one prepared encoder and decoder.  Everything else
(other namespaces, binary packets from clients, connects) returns None and
goes the python-socketio way; the wire format is the same either way (tested
against python-socketio's own ``Packet``).

Relayed chunks are the one binary packet handled here in both directions: a
binary event with a single attachment, whose text every socket.io client
writes the same way, so a flowing chunk is recognised by its text alone and
forwarded as received.
"""

from __future__ import annotations

import json
import re
from typing import Any

from wsstar.wire.events import PEER, QUEUE

EVENT = 2
ACK = 3
BINARY_EVENT = 5

# A relayed chunk as every socket.io client encodes it: a binary event with one
# attachment, no ack id, namespace "/".
_CHUNK_HEAD = f'{BINARY_EVENT}1-["{QUEUE}'
_CHUNK_TAIL = '",{"_placeholder":true,"num":0}]'
_PLACEHOLDER = {"_placeholder": True, "num": 0}

#: Ack ids are at most 99 digits (python-socketio refuses longer ones).
_HEAD = re.compile(r"([23])([0-9]{0,99})(?=\[)")


def _bounded_int(text: str) -> int:
    # Like python-engineio: converting a huge integer literal takes quadratic
    # time, which a client could use to stall the server.
    if len(text) > 100:
        raise ValueError("integer too large")
    return int(text)


_decoder = json.JSONDecoder(parse_int=_bounded_int)
_encoder = json.JSONEncoder(separators=(",", ":"))


def decode(text: str) -> tuple[int, int | None, list[Any]] | None:
    """(packet type, ack id, data) of an event or ack on ``/`` whose data is a
    JSON array; None for any other packet.

    Raises ValueError for malformed JSON, as python-socketio does.
    """
    head = _HEAD.match(text)
    if head is None:
        return None
    data = _decoder.decode(text[head.end() :])
    assert isinstance(data, list)  # the text after the head starts with "["
    digits = head.group(2)
    return int(head.group(1)), int(digits) if digits else None, data


def encode(packet_type: int, data: list[Any], ack_id: int | None = None) -> str | None:
    """The text of an event or ack on ``/``; None if ``data`` holds binary
    (or anything else JSON cannot carry), which python-socketio must encode."""
    try:
        body = _encoder.encode(data)
    except TypeError:
        return None
    return f"{packet_type}{'' if ack_id is None else ack_id}{body}"


def quote(text: str) -> str:
    """``text`` as a JSON string literal, as :func:`encode` writes it."""
    return _encoder.encode(text)


def quoted_list(quoted: list[str]) -> bytes:
    """The JSON array of strings already quoted (:func:`quote`), as UTF-8:
    the form in which it is written, once for every ack that lists it."""
    return f"[{','.join(quoted)}]".encode()


def joined_ack(ack_id: int, listed: bytes) -> list[bytes]:
    """The text of a successful join's ack, ``[null, null, peers]``, as UTF-8
    pieces around the peers' JSON array (:func:`quoted_list`): the same text
    :func:`encode` makes of :func:`~wsstar.wire.replies.join_ack`, with the
    array left as it is.  Long arrays are shared by the acks of a moment,
    and each ack would otherwise copy some 100 KB several times over."""
    return [f"{ACK}{ack_id}[null,null,".encode(), listed, b"]"]


def peer_announcement(quoted_address: str) -> str:
    """The text of ``ws-peer(address)`` from the address already quoted
    (:func:`quote`): the same text :func:`encode` makes of it, without
    encoding an address again each time it is announced."""
    return f'{EVENT}["{PEER}",{quoted_address}]'


def chunk_head(stream: str) -> str:
    """The text packet of a relayed chunk for ``stream``; its attachment (the
    chunk's bytes) follows as a binary message."""
    return f"{BINARY_EVENT}1-" + _encoder.encode([QUEUE + stream, _PLACEHOLDER])


def chunk_stream(text: str) -> str | None:
    """The stream name if ``text`` is the head of a relayed chunk in the exact
    form :func:`chunk_head` writes; None for anything else, which must then be
    decoded in full."""
    if not (text.startswith(_CHUNK_HEAD) and text.endswith(_CHUNK_TAIL)):
        return None
    name = text[len(_CHUNK_HEAD) : -len(_CHUNK_TAIL)]
    if not name or '"' in name or "\\" in name:
        return None
    return name
