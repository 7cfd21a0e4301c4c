"""Property-based fuzzing of a live server with both protocol generations.

Random event names, argument lists of random types and sizes, random ack ids,
random binary attachments and random raw Engine.IO / Socket.IO frames.  After
every case the server's tables must be consistent, and after every batch a
fresh client must still join and be answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.eio3 import joined
from tests.support.live import LiveServer, live_server
from wsstar.server.admission import Limits
from wsstar.server.metrics import Metrics
from wsstar.star.rendezvous import Settings

TIMEOUT = 10.0

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=200),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
event_names = st.sampled_from(
    [
        "ss-join",
        "ss-leave",
        "ss-dial",
        "socket.io-pull-stream.queue.x.dialer",
        "socket.io-pull-stream.accept.x.listener",
        "socket.io-pull-stream.error.x.dialer",
        "ws-peer",
        "ss-incomming",
        "",
    ]
) | st.text(max_size=40)
raw_frames = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    st.builds(
        lambda t, rest: t + rest,
        st.sampled_from(["4", "42", "43", "45", "451-", "40", "41", "2", "3", "5", "6"]),
        st.text(max_size=200),
    ),
)


class ServerThread:
    """A live server on its own event loop, so hypothesis can drive it from
    synchronous test functions."""

    def __init__(self) -> None:
        self.errors: list[logging.LogRecord] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.server: LiveServer | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        # Anything logged at ERROR is a bug: bad input must be answered or
        # make the server close that connection, never blow up a handler.
        handler = logging.Handler(logging.ERROR)
        handler.emit = self.errors.append  # type: ignore[method-assign]
        loggers = [logging.getLogger(n) for n in ("wsstar", "engineio", "socketio")]
        for logger in loggers:
            logger.addHandler(handler)
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            for logger in loggers:
                logger.removeHandler(handler)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        rules = Settings(strict_multiaddr=False)
        # Every case comes from 127.0.0.1: per-address rate limits (tested on
        # their own) would otherwise make later cases depend on earlier ones.
        limits = Limits(joins_per_ip_per_second=0, dials_per_ip_per_second=0)
        async with live_server(rules=rules, limits=limits, dial_timeout=1.0) as srv:
            self.server = srv
            self.ready.set()
            await self._stop.wait()

    def call(self, fn: Any) -> Any:
        """Run ``fn()`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(_wrap(fn), self.loop).result(TIMEOUT)

    def stop(self) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(TIMEOUT)


async def _wrap(fn: Any) -> Any:
    return fn()


@pytest.fixture(scope="module")
def server_thread() -> Iterator[ServerThread]:
    st_ = ServerThread()
    st_.thread.start()
    assert st_.ready.wait(TIMEOUT)
    yield st_
    st_.stop()


def problems(server: LiveServer) -> list[str]:
    """Every table entry must belong to a connected socket, and what
    ``/metrics`` says must match the tables it describes."""
    service = server.service
    core = service.core
    # Ground truth: Socket.IO sockets whose Engine.IO session is still open.
    engines = service.sio.eio.sockets
    connected = {
        sid
        for sid, client in service._clients.items()
        if engines.get(client.session.sid) is client.session  # type: ignore[attr-defined]
    }
    out = []
    if set(core._sockets) != connected:
        out.append("rules and engine disagree on who is connected")
    for sid in core.directory.local_sockets():
        if sid not in connected:
            out.append(f"address owned by closed socket {sid}")
    for owner in set(core.streams._by_source) | set(core.streams._by_sink):
        if owner.socket not in connected:
            out.append(f"stream entry of closed socket {owner}")
    for key, pending in core._dials.items():
        if key.dialer.socket not in connected or pending.target.socket not in connected:
            out.append(f"dial {key} of a closed socket")
    if len(service._clients) != len(connected):
        out.append("client map holds closed sockets")
    if len(core.schedule) != len(core.directory):
        out.append("announcement schedule and directory disagree")
    out.extend(metric_problems(server, connected))
    return out


def metric_problems(server: LiveServer, connected: set[str]) -> list[str]:
    core = server.service.core
    page = Metrics(server.service).render().decode()
    # Read the samples as written: prometheus-client's parser renames counter
    # samples that do not end in _total, and these names are the contract.
    seen = {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in page.splitlines())
        if name and not name.startswith("#") and "{" not in name
    }
    expected = {
        "rendezvous_peers": len(core.directory),
        "wsstar_connected_sockets": len(connected),
        "wsstar_relay_streams": len(core.streams),
        "wsstar_pending_dials": len(core._dials),
        "wsstar_pending_challenges": sum(len(s.challenges) for s in core._sockets.values()),
        "rendezvous_joins_total": seen["rendezvous_joins_total_success"]
        + seen["rendezvous_joins_total_failure"],
        "rendezvous_dials_total": seen["rendezvous_dials_total_success"]
        + seen["rendezvous_dials_total_failure"],
    }
    return [
        f"metric {name} = {seen.get(name)}, tables say {value}"
        for name, value in expected.items()
        if seen.get(name) != value
    ]


async def _session(port: int, v4: bool, frames: list[str | bytes]) -> None:
    url = f"http://127.0.0.1:{port}/socket.io/?EIO={4 if v4 else 3}&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await asyncio.wait_for(ws.receive(), TIMEOUT)  # open
        if v4:
            await ws.send_str("40")
        for frame in frames:
            try:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
            except ConnectionResetError:
                break  # the server closed this connection: an allowed outcome
        # Let the server process what it got, then leave abruptly.
        await asyncio.sleep(0.01)


def _event_frame(
    name: str, args: list[Any], ack: int | None, blobs: list[bytes]
) -> list[str | bytes]:
    data = [name, *args, *({"_placeholder": True, "num": i} for i in range(len(blobs)))]
    head = f"45{len(blobs)}-" if blobs else "42"
    text = head + ("" if ack is None else str(ack)) + json.dumps(data)
    return [text, *(b"\x04" + b for b in blobs)]


def _assert_healthy(server_thread: ServerThread) -> None:
    server = server_thread.server
    assert server is not None
    deadline = 50
    for _ in range(deadline):
        found = server_thread.call(lambda: problems(server))
        if not found:
            break
        asyncio.run(asyncio.sleep(0.05))
    assert found == []


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    v4=st.booleans(),
    events=st.lists(
        st.tuples(
            event_names,
            st.lists(json_values, max_size=4),
            st.none() | st.integers(0, 10**12),
            st.lists(st.binary(max_size=64), max_size=2),
        ),
        max_size=6,
    ),
)
def test_random_events_never_hurt_the_server(
    server_thread: ServerThread, v4: bool, events: list[Any]
) -> None:
    server = server_thread.server
    assert server is not None
    frames: list[str | bytes] = []
    for name, args, ack, blobs in events:
        frames.extend(_event_frame(name, args, ack, blobs))
    if v4:  # v4 binary attachments carry no 0x04 prefix
        frames = [f[1:] if isinstance(f, bytes) else f for f in frames]
    asyncio.run(_session(server.port, v4, frames))
    _assert_healthy(server_thread)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(v4=st.booleans(), frames=st.lists(raw_frames, max_size=8))
def test_random_frames_never_hurt_the_server(
    server_thread: ServerThread, v4: bool, frames: list[str | bytes]
) -> None:
    server = server_thread.server
    assert server is not None
    asyncio.run(_session(server.port, v4, frames))
    _assert_healthy(server_thread)


def test_clients_still_join_discover_and_relay_after_the_fuzzing(
    server_thread: ServerThread,
) -> None:
    server = server_thread.server
    assert server is not None

    async def exercise() -> None:
        (a, addr_a), (b, addr_b) = await joined(server.port), await joined(server.port)
        try:
            assert await a.next_event("ws-peer") == ("ws-peer", [addr_b])
            dial = asyncio.ensure_future(a.call("ss-dial", addr_a, addr_b, "after-fuzz"))
            await b.next_event("ss-incomming")
            await b.accept_dial("after-fuzz")
            assert await asyncio.wait_for(dial, TIMEOUT) == []
            await a.emit("socket.io-pull-stream.queue.after-fuzz.dialer", b"still relaying")
            event = await b.next_event("socket.io-pull-stream.queue.after-fuzz.dialer")
            assert event[1] == [b"still relaying"]
        finally:
            await a.close()
            await b.close()

    asyncio.run(exercise())
    _assert_healthy(server_thread)
    assert [r.getMessage() for r in server_thread.errors] == []
