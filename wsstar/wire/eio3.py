"""Engine.IO protocol 3 framing, as pure functions over text and bytes.

Every deployed ``libp2p-websocket-star`` node speaks socket.io-client 2.x,
i.e. Engine.IO protocol 3.  Where its framing differs from protocol 4 it is
written here, with no I/O and no dependency on python-engineio, so that a
server and a client can share it:

* binary websocket frames carry a leading ``0x04`` type byte, or, for clients
  that asked for ``b64=1``, travel as text ``b4<base64>``;
* long-polling payloads are ``<length>:<packet>`` with lengths in UTF-16 code
  units, or the XHR2 binary form ``<0|1><length digits>0xFF<data>``.

A *message* here is either the text of one encoded Engine.IO packet
(``"4..."``, ``"2probe"``) or the bytes of one binary message packet.
"""

from __future__ import annotations

import base64
import binascii

from wsstar.errors import ProtocolError

#: Engine.IO packet type of a message, as the first byte of a binary frame.
MESSAGE_TYPE = 4
#: Engine.IO packet types a client may send as text ('0'..'6').
TEXT_PACKET_TYPES = frozenset("0123456")

_B64_PREFIX = "b4"
#: Packets one polling POST may carry (python-engineio's own bound for v4):
#: each is answered, and a body of thousands of pings would queue thousands
#: of pongs.
MAX_PAYLOAD_PACKETS = 16


def v3_query(query: str) -> tuple[str, bool] | None:
    """For a protocol 3 request (``EIO=3``), its query string naming
    protocol 4 instead, and whether it asked for binary as base64
    (``b64=1``); None for any other request.

    python-engineio refuses anything but ``EIO=4`` before looking further,
    so a v3 request passes under the v4 name.  Parameters are matched as
    clients send them, unencoded, and the others pass through untouched:
    this runs for every request, and decoding and re-encoding the whole
    query was a few percent of the server's work in a burst of connections.
    """
    params = query.split("&")
    if [p for p in params if p.startswith("EIO=")] != ["EIO=3"]:
        return None
    b64 = next((p[4:] for p in params if p.startswith("b64=")), "")
    return "&".join("EIO=4" if p == "EIO=3" else p for p in params), b64 in ("1", "true")


def utf16_length(text: str) -> int:
    """Length as JavaScript counts it, which is what v3 payload headers use."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def b64_message(data: bytes) -> str:
    """A binary message as v3 text, for clients without binary support."""
    return _B64_PREFIX + base64.b64encode(data).decode("ascii")


def websocket_frame(message: str | bytes, b64: bool) -> str | bytes:
    """What a v3 websocket carries for one message."""
    if isinstance(message, str):
        return message
    return b64_message(message) if b64 else bytes([MESSAGE_TYPE]) + message


def read_websocket_frame(frame: str | bytes) -> str | bytes:
    """The message a v3 websocket frame carries; raises ProtocolError."""
    if isinstance(frame, bytes):
        if not frame or frame[0] != MESSAGE_TYPE:
            raise ProtocolError("binary frame without the message type byte")
        return frame[1:]
    if frame.startswith(_B64_PREFIX):
        return _decode_b64(frame)
    return frame


def encode_payload(messages: list[str | bytes]) -> bytes:
    """A polling response body.  Always the text form: v3 clients choose their
    decoder from the Content-Type, so text works for binary-capable ones too."""
    parts = []
    for message in messages:
        text = message if isinstance(message, str) else b64_message(message)
        parts.append(f"{utf16_length(text)}:{text}")
    return "".join(parts).encode()


def decode_payload(body: bytes, content_type: str) -> list[str | bytes]:
    """The messages of a polling POST body from a v3 client; raises ProtocolError."""
    try:
        if content_type.startswith("application/octet-stream"):
            parts = _split_binary_payload(body)
        else:
            parts = list(_split_text_payload(body.decode("utf-8")))
    except UnicodeDecodeError as exc:
        raise ProtocolError("payload is not UTF-8") from exc
    if len(parts) > MAX_PAYLOAD_PACKETS:
        raise ProtocolError(f"more than {MAX_PAYLOAD_PACKETS} packets in one payload")
    messages: list[str | bytes] = []
    for part in parts:
        if isinstance(part, bytes):
            if not part or part[0] != MESSAGE_TYPE:
                raise ProtocolError("binary packet is not a message")
            messages.append(part[1:])
        elif part.startswith(_B64_PREFIX):
            messages.append(_decode_b64(part))
        elif not part or part[0] not in TEXT_PACKET_TYPES:
            raise ProtocolError(f"invalid packet {part[:20]!r}")
        else:
            messages.append(part)
    return messages


def _decode_b64(text: str) -> bytes:
    try:
        return base64.b64decode(text[len(_B64_PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ProtocolError("invalid base64 packet") from exc


def _split_text_payload(body: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(body):
        colon = body.find(":", i)
        if colon <= i or colon - i > 9 or not body[i:colon].isdigit():
            raise ProtocolError("invalid payload length")
        want = int(body[i:colon])
        start = end = colon + 1
        units = 0
        while units < want and end < len(body):
            units += 2 if ord(body[end]) > 0xFFFF else 1
            end += 1
        if units != want or want == 0:
            raise ProtocolError("payload length does not match its data")
        out.append(body[start:end])
        i = end
    return out


def _split_binary_payload(body: bytes) -> list[str | bytes]:
    out: list[str | bytes] = []
    i = 0
    while i < len(body):
        kind = body[i]
        end_of_length = body.find(b"\xff", i + 1)
        digits = body[i + 1 : end_of_length]
        if kind not in (0, 1) or end_of_length < 0 or not 0 < len(digits) <= 9:
            raise ProtocolError("invalid binary payload header")
        if any(d > 9 for d in digits):
            raise ProtocolError("invalid binary payload length")
        length = int("".join(str(d) for d in digits))
        data = body[end_of_length + 1 : end_of_length + 1 + length]
        if len(data) != length:
            raise ProtocolError("binary payload is truncated")
        if kind == 0:
            out.append(data.decode("utf-8", errors="strict"))
        else:
            out.append(data)
        i = end_of_length + 1 + length
    return out
