"""wsstar: a libp2p WebSocketStar rendezvous server.

The layers, each its own subpackage:

* :mod:`wsstar.wire`: the protocol vocabulary a server and a client share
  (event names, the Socket.IO text codec, Engine.IO v3 framing, request
  parsing, every client-visible string), no I/O;
* :mod:`wsstar.identity`: public keys, peer ids, signatures, multiaddr checks;
* :mod:`wsstar.star`: the websocket-star rules (rendezvous, relay,
  announcements) as plain synchronous code;
* :mod:`wsstar.directory`: who owns which address, behind one interface;
* :mod:`wsstar.server`: the service, HTTP, metrics, configuration and the
  command line; only :mod:`wsstar.server.engineio` touches the internals of
  python-socketio, python-engineio and aiohttp.

This package itself exports the version and the exceptions wsstar raises.
"""

from importlib.metadata import PackageNotFoundError, version

from wsstar.errors import ConfigError, ProtocolError, WsstarError

try:
    __version__ = version("wsstar")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["ConfigError", "ProtocolError", "WsstarError", "__version__"]
