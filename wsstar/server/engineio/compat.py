"""The private parts of python-engineio, python-socketio and aiohttp this
adapter relies on, written down so that an upgrade breaks in one place.

This subpackage extends those libraries where they have no public hook:
Engine.IO v3 sessions, the websocket loops, the fast paths for events and
relayed chunks.  :data:`HOOKS` lists every private method it overrides or
calls, with the parameters it expects; ``tests/unit/test_internals.py``
checks each against the installed libraries, and :func:`check_versions`
refuses, at import, versions outside the ranges the hooks were written for
(the same ranges as pyproject.toml, which a test keeps in step).
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass

import engineio
import socketio
from aiohttp import base_protocol
from engineio import async_socket
from engineio.async_drivers import aiohttp as eio_aiohttp


@dataclass(frozen=True, slots=True)
class Hook:
    """One private method used: where it is, and its parameter names."""

    holder: type
    name: str
    parameters: tuple[str, ...]


HOOKS: tuple[Hook, ...] = (
    # python-engineio: session opening is copied whole (eio3.py) and uses these.
    Hook(engineio.AsyncServer, "_handle_connect", ("self", "environ", "transport", "jsonp_index")),
    Hook(engineio.AsyncServer, "_upgrades", ("self", "sid", "transport")),
    Hook(engineio.AsyncServer, "_trigger_event", ("self", "event", "args", "kwargs")),
    Hook(engineio.AsyncServer, "_unauthorized", ("self", "message")),
    Hook(engineio.AsyncServer, "_bad_request", ("self", "message")),
    Hook(engineio.AsyncServer, "_ok", ("self", "packets", "headers", "jsonp_index")),
    Hook(engineio.AsyncServer, "_service_task", ("self",)),
    # The origin check, asked again (eio3.py) to report its refusals.
    Hook(engineio.AsyncServer, "_cors_allowed_origins", ("self", "environ")),
    # python-engineio sessions: the websocket loops (session.py) and the v3
    # heartbeat and polling (eio3.py) override these.
    Hook(async_socket.AsyncSocket, "_websocket_handler", ("self", "ws")),
    Hook(async_socket.AsyncSocket, "close", ("self", "wait", "abort", "reason")),
    Hook(async_socket.AsyncSocket, "send", ("self", "pkt")),
    Hook(async_socket.AsyncSocket, "receive", ("self", "pkt")),
    Hook(async_socket.AsyncSocket, "poll", ("self",)),
    Hook(async_socket.AsyncSocket, "schedule_ping", ("self",)),
    Hook(async_socket.AsyncSocket, "_send_ping", ("self",)),
    Hook(async_socket.AsyncSocket, "check_ping_timeout", ("self",)),
    Hook(async_socket.AsyncSocket, "handle_get_request", ("self", "environ")),
    Hook(async_socket.AsyncSocket, "handle_post_request", ("self", "environ")),
    Hook(eio_aiohttp.WebSocket, "__init__", ("self", "handler", "server")),
    Hook(eio_aiohttp.WebSocket, "__call__", ("self", "environ")),
    Hook(eio_aiohttp.WebSocket, "wait", ("self",)),
    # python-socketio: the fast paths and the v2 handshake (server.py).
    Hook(socketio.AsyncServer, "_handle_eio_connect", ("self", "eio_sid", "environ")),
    Hook(socketio.AsyncServer, "_handle_eio_disconnect", ("self", "eio_sid", "reason")),
    Hook(socketio.AsyncServer, "_handle_eio_message", ("self", "eio_sid", "data")),
    Hook(socketio.AsyncServer, "_handle_connect", ("self", "eio_sid", "namespace", "data")),
    Hook(socketio.AsyncServer, "_handle_event", ("self", "eio_sid", "namespace", "id", "data")),
    Hook(socketio.AsyncServer, "_handle_ack", ("self", "eio_sid", "namespace", "id", "data")),
    Hook(socketio.AsyncServer, "_send_packet", ("self", "eio_sid", "pkt")),
    Hook(socketio.AsyncServer, "_engineio_server_class", ("self",)),
    Hook(socketio.AsyncManager, "basic_disconnect", ("self", "sid", "namespace", "kwargs")),
    # aiohttp: waiting for a paused transport after a batched write.
    Hook(base_protocol.BaseProtocol, "_drain_helper", ("self",)),
)

#: Private attributes used, by the class whose instances carry them.
ATTRIBUTES: tuple[tuple[type, tuple[str, ...]], ...] = (
    (
        engineio.AsyncServer,
        ("_async", "start_service_task", "ping_interval_grace_period", "cookie"),
    ),
    (socketio.AsyncServer, ("_binary_packet",)),
    (socketio.AsyncManager, ("rooms", "callbacks", "pending_connect", "pending_disconnect")),
)

#: Private attributes set by one method of a dependency and read by ours (so
#: only their use in the dependency's source can be checked): (method, name).
SET_BY: tuple[tuple[object, str], ...] = (
    (eio_aiohttp.WebSocket.send, "_sock"),
    (eio_aiohttp.WebSocket.close, "_sock"),
)

#: Distribution -> (lowest, first excluded) versions the hooks were written for.
SUPPORTED: dict[str, tuple[str, str]] = {
    "python-engineio": ("4.15.1", "4.16"),
    "python-socketio": ("5.18.1", "5.19"),
    "aiohttp": ("3.10", "3.15"),
}


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def check_versions() -> None:
    """Refuse to run on versions the hooks were not written for, saying why."""
    for dist, (lowest, excluded) in SUPPORTED.items():
        installed = importlib.metadata.version(dist)
        if not _version_key(lowest) <= _version_key(installed) < _version_key(excluded):
            raise ImportError(
                f"wsstar needs {dist} >={lowest},<{excluded} (found {installed}): it "
                f"extends private parts of {dist} that other versions may lack; "
                "install the versions pyproject.toml asks for"
            )
