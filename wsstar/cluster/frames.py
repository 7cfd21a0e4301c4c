"""The wire form of node links: length-prefixed frames, with no I/O.

A node link carries what one node tells another about dials and relayed
streams between their sockets (:mod:`wsstar.cluster.links`).  Each frame is a
JSON array (the header: a message kind and its arguments) and an optional
binary payload (a relayed chunk, sent as it came, never encoded)::

    u32 header length | u32 payload length | header (UTF-8 JSON) | payload

Big-endian lengths.  A frame larger than :data:`MAX_FRAME` is refused, so a
broken or hostile peer cannot make a node buffer without bound.
"""

from __future__ import annotations

import json
import struct

_LENGTHS = struct.Struct(">II")
#: The largest header or payload accepted: a chunk is at most a Socket.IO
#: message (``--max-message-size``, 1 MiB by default) and headers are small.
MAX_FRAME = 64 * 1024 * 1024

Header = list[object]


class BadFrame(ValueError):
    """A frame that cannot be read: the link is closed."""


def encode(header: Header, payload: bytes = b"") -> bytes:
    """One frame."""
    text = json.dumps(header, separators=(",", ":")).encode()
    return _LENGTHS.pack(len(text), len(payload)) + text + payload


class FrameReader:
    """Frames from a byte stream fed in pieces of any size."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[Header, bytes]]:
        """Take in ``data``; every frame now complete."""
        buffer = self._buffer
        out: list[tuple[Header, bytes]] = []
        buffer += data
        start = 0
        while len(buffer) - start >= _LENGTHS.size:
            head, size = _LENGTHS.unpack_from(buffer, start)
            if head > MAX_FRAME or size > MAX_FRAME:
                raise BadFrame(f"frame of {head}+{size} bytes is over {MAX_FRAME}")
            end = start + _LENGTHS.size + head + size
            if len(buffer) < end:
                break
            body = start + _LENGTHS.size
            try:
                header = json.loads(bytes(buffer[body : body + head]))
            except ValueError as exc:
                raise BadFrame(f"frame header is not JSON: {exc}") from None
            if not isinstance(header, list) or not header or not isinstance(header[0], str):
                raise BadFrame("frame header is not [kind, ...]")
            payload = bytes(buffer[body + head : end])
            start = end
            out.append((header, payload))
        del buffer[:start]
        return out
