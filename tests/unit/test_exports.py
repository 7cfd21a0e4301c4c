"""The packages export what they say, and importing the protocol layers does
not pull in the server."""

from __future__ import annotations

import subprocess
import sys

import pytest

import wsstar
import wsstar.directory
import wsstar.server.engineio

PUBLIC = {
    wsstar: {"ConfigError", "ProtocolError", "WsstarError", "__version__"},
    wsstar.directory: {"LOCAL_NODE", "NodeId", "Owner", "PeerDirectory", "SocketId"},
    wsstar.server.engineio: {
        "KEEPALIVE_TIMEOUT",
        "LINGERING_TIME",
        "ConnectionGate",
        "GuardedSite",
        "Handler",
        "OneLineParseErrors",
        "Session",
        "SocketServer",
        "text_frame",
    },
}


@pytest.mark.parametrize("module", list(PUBLIC), ids=lambda m: m.__name__)
def test_all_lists_the_public_names(module: object) -> None:
    names = set(getattr(module, "__all__", ()))
    assert names == PUBLIC[module]  # type: ignore[index]
    for name in names:
        assert hasattr(module, name), name


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    assert wsstar.__version__ == version("wsstar")


def test_the_protocol_layers_need_no_socket_library() -> None:
    code = (
        "import sys, wsstar.wire.codec, wsstar.wire.requests, wsstar.wire.replies, "
        "wsstar.wire.eio3, wsstar.star.rendezvous, wsstar.star.routes, wsstar.directory.memory, "
        "wsstar.cluster.frames, wsstar.cluster.replica\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded & {'socketio', 'engineio', 'aiohttp'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
