"""The exceptions wsstar raises on purpose.

What clients are told is not here: every client-visible string is in
:mod:`wsstar.wire.reasons`.

* :class:`WsstarError`: the base of them all.
* :class:`ConfigError`: the server cannot start (or reload) with what it was given.
* :class:`ProtocolError`: a peer's framing is not Engine.IO / Socket.IO.
"""

from __future__ import annotations


class WsstarError(Exception):
    """Base of the exceptions wsstar raises on purpose."""


class ConfigError(WsstarError):
    """The server cannot start with the settings given (bad flag, unreadable file)."""


class ProtocolError(WsstarError):
    """A peer sent something that is not valid Engine.IO / Socket.IO framing.

    The connection it arrived on is closed; nothing else is affected.
    """
