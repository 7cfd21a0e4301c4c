"""The event names of the WebSocketStar protocol and of socket.io-pull-stream.

A client and a server share this vocabulary; nothing here does I/O.
"""

from __future__ import annotations

import enum

#: Join an address, with the crypto challenge: ``(address, key or signature hex)``.
JOIN = "ss-join"
#: Leave an address: ``(address)``.
LEAVE = "ss-leave"
#: Dial a peer through the server: ``(from address, to address, dial id)``.
DIAL = "ss-dial"
#: Sent to a listener that is dialed: ``(dial id, dialer address)``; the
#: reference's spelling, which every client listens for.
INCOMING = "ss-incomming"
#: Sent to every peer when an address joins, and again each round: ``(address)``.
PEER = "ws-peer"

#: Relayed data travels as socket.io-pull-stream events, one name per half-stream.
STREAM_PREFIX = "socket.io-pull-stream."


class StreamEvent(enum.Enum):
    """The three pull-stream events: ``socket.io-pull-stream.<kind>.<stream name>``."""

    #: The receiving side is ready for chunks.
    ACCEPT = "accept"
    #: One chunk of data.
    QUEUE = "queue"
    #: The end of the stream: ``true`` for a normal end, anything else is an error.
    ERROR = "error"

    @property
    def prefix(self) -> str:
        """The event name without the stream name."""
        return f"{STREAM_PREFIX}{self.value}."

    def name_for(self, stream: str) -> str:
        """The full event name for ``stream``."""
        return self.prefix + stream


ACCEPT = StreamEvent.ACCEPT.prefix
QUEUE = StreamEvent.QUEUE.prefix
ERROR = StreamEvent.ERROR.prefix

#: Suffixes of the two half-streams of one relayed connection.
DIALER_HALF = ".dialer"
LISTENER_HALF = ".listener"


def parse_stream_event(event: str) -> tuple[StreamEvent, str] | None:
    """Split ``socket.io-pull-stream.<kind>.<name>`` into (kind, name).

    Returns None for anything else, including an empty name: stale or odd
    pull-stream events are normal (clients flush them after a reconnect) and
    are ignored rather than answered.
    """
    if not event.startswith(STREAM_PREFIX):
        return None
    kind, dot, name = event[len(STREAM_PREFIX) :].partition(".")
    parsed = _KINDS.get(kind)
    if parsed is None or not dot or not name:
        return None
    return parsed, name


# A plain dict: looking an enum member up by value costs more, on the path
# of every relayed event.
_KINDS = {kind.value: kind for kind in StreamEvent}


def other_half(name: str) -> str | None:
    """The opposite half-stream of the same relayed connection, if ``name``
    is one of a pair (``<dial id>.dialer`` and ``<dial id>.listener``)."""
    if name.endswith(DIALER_HALF) and len(name) > len(DIALER_HALF):
        return name[: -len(DIALER_HALF)] + LISTENER_HALF
    if name.endswith(LISTENER_HALF) and len(name) > len(LISTENER_HALF):
        return name[: -len(LISTENER_HALF)] + DIALER_HALF
    return None
