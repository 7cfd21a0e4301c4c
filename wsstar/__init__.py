"""wsstar: a libp2p WebSocketStar rendezvous server."""

__version__ = "0.1.0"
