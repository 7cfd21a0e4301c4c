"""The WebSocketStar protocol vocabulary, with no I/O: what a server and a
client both need to speak it.

* :mod:`~wsstar.wire.events`: event and pull-stream names;
* :mod:`~wsstar.wire.codec`: Socket.IO events and acks as text;
* :mod:`~wsstar.wire.eio3`: Engine.IO protocol 3 framing;
* :mod:`~wsstar.wire.requests`: requests checked for shape and size;
* :mod:`~wsstar.wire.replies`: answers as types, and their ack arguments;
* :mod:`~wsstar.wire.reasons`: every client-visible string.
"""
