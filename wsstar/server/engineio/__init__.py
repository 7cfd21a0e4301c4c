"""The one place that touches python-socketio, python-engineio and aiohttp internals.

Everything else in wsstar sees a :class:`SocketServer` that hands a
:class:`Handler` plain values, and a :class:`Session` per connection to
write to.  The private parts used are listed in :mod:`.compat`; importing
this package refuses library versions they were not written for.
"""

from wsstar.server.engineio.compat import check_versions

check_versions()

from wsstar.server.engineio.server import (  # noqa: E402  (after the version check)
    Handler,
    Session,
    SocketServer,
)
from wsstar.server.engineio.session import text_frame  # noqa: E402
from wsstar.server.engineio.tcp import (  # noqa: E402
    KEEPALIVE_TIMEOUT,
    LINGERING_TIME,
    ConnectionGate,
    GuardedSite,
    OneLineParseErrors,
)

__all__ = [
    "KEEPALIVE_TIMEOUT",
    "LINGERING_TIME",
    "ConnectionGate",
    "GuardedSite",
    "Handler",
    "OneLineParseErrors",
    "Session",
    "SocketServer",
    "text_frame",
]
