"""A deliberately raw Engine.IO v3 / Socket.IO v2 websocket client.

It speaks the frames exactly as socket.io-client 2.x does (see PROTOCOL.md),
so tests can check the server's bytes rather than a library's interpretation,
and can also send the malformed frames a library would refuse to produce.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp

from tests.support.identity import Identity

TIMEOUT = 10.0


class Eio3Client:
    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws
        self.open: dict[str, Any] = {}
        self.events: asyncio.Queue[tuple[str, list[Any]]] = asyncio.Queue()
        self.acks: dict[int, asyncio.Future[list[Any]]] = {}
        self.frames: list[str | bytes] = []
        self._next_ack = 0
        #: Ack ids of the ss-incomming requests received, by dial id.
        self.incoming: dict[str, int] = {}
        self._pending_binary: tuple[str, Any, int, list[bytes]] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        #: Cleared to stop reading (the server's writes then back up), set to
        #: read again; with ``read_rate`` (bytes a second) binary frames are
        #: taken no faster than that.
        self.reading = asyncio.Event()
        self.reading.set()
        self.read_rate: float | None = None
        #: With ``collect_chunks``, relayed chunks are kept here by stream
        #: name, in order, instead of queued as events (a test may receive
        #: megabytes of them).
        self.collect_chunks = False
        self.chunks: dict[str, list[bytes]] = {}

    @classmethod
    async def connect(
        cls,
        port: int,
        query: str = "",
        keepalive: bool = True,
        headers: dict[str, str] | None = None,
        local: str | None = None,
    ) -> Eio3Client:
        """Connect and complete the handshake; with ``keepalive`` the client
        pings like socket.io-client 2 does (only short ping intervals in tests
        make that matter).  ``local`` is the loopback address to connect
        from, so that one test can be several client addresses."""
        connector = aiohttp.TCPConnector(local_addr=(local, 0)) if local else None
        session = aiohttp.ClientSession(connector=connector)
        try:
            ws = await session.ws_connect(
                f"http://127.0.0.1:{port}/socket.io/?EIO=3&transport=websocket{query}",
                timeout=aiohttp.ClientWSTimeout(ws_close=TIMEOUT),
                headers=headers,
            )
        except BaseException:
            await session.close()
            raise
        client = cls(session, ws)
        first = await asyncio.wait_for(ws.receive_str(), TIMEOUT)
        assert first.startswith("0{"), first
        client.open = json.loads(first[1:])
        second = await asyncio.wait_for(ws.receive_str(), TIMEOUT)
        assert second == "40", second
        client._reader = asyncio.get_running_loop().create_task(client._read())
        if keepalive:
            client._pinger = asyncio.get_running_loop().create_task(client._ping())
        return client

    async def _ping(self) -> None:
        interval = self.open["pingInterval"] / 1000 / 2
        with contextlib.suppress(ConnectionError):
            while not self.ws.closed:
                await asyncio.sleep(interval)
                await self.ws.send_str("2")

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                await self.reading.wait()
                if msg.type == aiohttp.WSMsgType.BINARY and self.read_rate:
                    await asyncio.sleep(len(msg.data) / self.read_rate)
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.frames.append(msg.data)
                    self._on_text(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self.frames.append(msg.data)
                    self._on_binary(msg.data)
        finally:
            self.closed.set()

    def _on_text(self, text: str) -> None:
        if not text.startswith("4"):
            return
        body = text[1:]
        kind = body[0]
        rest = body[1:]
        attachments = 0
        if kind in "56":
            count, _, rest = rest.partition("-")
            attachments = int(count)
        if rest.startswith("/"):
            rest = rest.partition(",")[2]  # namespace: only "/" is used here
        ack_id = None
        digits = ""
        while rest and rest[0].isdigit():
            digits += rest[0]
            rest = rest[1:]
        if digits:
            ack_id = int(digits)
        data = json.loads(rest) if rest else []
        if attachments:
            self._pending_binary = (kind, (ack_id, data), attachments, [])
            return
        self._deliver(kind, ack_id, data)

    def _on_binary(self, frame: bytes) -> None:
        assert frame[:1] == b"\x04", frame[:8]
        assert self._pending_binary is not None
        kind, (ack_id, data), count, parts = self._pending_binary
        parts.append(frame[1:])
        if len(parts) == count:
            self._pending_binary = None
            self._deliver(kind, ack_id, _fill(data, parts))

    def _deliver(self, kind: str, ack_id: int | None, data: Any) -> None:
        queue = "socket.io-pull-stream.queue."
        if self.collect_chunks and kind == "5" and data[0].startswith(queue):
            self.chunks.setdefault(data[0][len(queue) :], []).append(data[1])
            return
        if kind in "25":
            if data[0] == "ss-incomming" and ack_id is not None:
                self.incoming[data[1]] = ack_id
            self.events.put_nowait((data[0], data[1:]))
        elif kind in "36" and ack_id is not None and ack_id in self.acks:
            future = self.acks.pop(ack_id)
            if not future.done():
                future.set_result(data)

    async def send_raw(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def emit(self, event: str, *args: Any) -> None:
        await self._send_event(event, list(args), None)

    async def call(self, event: str, *args: Any, timeout: float = TIMEOUT) -> list[Any]:
        future = self._expect_ack()
        await self._send_event(event, list(args), self._next_ack - 1)
        return await asyncio.wait_for(future, timeout)

    async def call_raw(self, data: str, timeout: float = TIMEOUT) -> list[Any]:
        """Send ``42<ack id><data>`` with ``data`` as written (for payloads
        :meth:`call` cannot express) and return the answer."""
        future = self._expect_ack()
        await self.send_raw(f"42{self._next_ack - 1}{data}")
        return await asyncio.wait_for(future, timeout)

    def _expect_ack(self) -> asyncio.Future[list[Any]]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.acks[self._next_ack] = future
        self._next_ack += 1
        return future

    async def _send_event(self, event: str, args: list[Any], ack_id: int | None) -> None:
        attachments: list[bytes] = []

        def strip(value: Any) -> Any:
            if isinstance(value, bytes):
                attachments.append(value)
                return {"_placeholder": True, "num": len(attachments) - 1}
            return value

        data = [event, *(strip(a) for a in args)]
        head = "45" + f"{len(attachments)}-" if attachments else "42"
        text = (
            head + ("" if ack_id is None else str(ack_id)) + json.dumps(data, separators=(",", ":"))
        )
        await self.ws.send_str(text)
        for blob in attachments:
            await self.ws.send_bytes(b"\x04" + blob)

    async def next_event(
        self, name: str | None = None, timeout: float = TIMEOUT
    ) -> tuple[str, list[Any]]:
        """The next event called ``name``; without a name, the next one that is
        not a ``ws-peer`` announcement (those arrive whenever peers join)."""
        while True:
            event = await asyncio.wait_for(self.events.get(), timeout)
            if event[0] == name or (name is None and event[0] != "ws-peer"):
                return event

    async def accept_dial(self, dial_id: str) -> None:
        """Accept an ``ss-incomming`` as the real listener does: open its
        receiving stream, then ack with no error."""
        await self.emit(f"socket.io-pull-stream.accept.{dial_id}.dialer")
        await self.send_raw(f"43{self.incoming[dial_id]}[]")

    async def close(self) -> None:
        self.reading.set()
        if self._pinger is not None:
            self._pinger.cancel()
        if not self.ws.closed:
            await self.ws.close()
        if self._reader is not None and not self._reader.cancelled():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._reader, TIMEOUT)
        await self.session.close()


def _fill(data: Any, parts: list[bytes]) -> Any:
    if isinstance(data, list):
        return [_fill(item, parts) for item in data]
    if isinstance(data, dict):
        if data.get("_placeholder") is True:
            return parts[data["num"]]
        return {k: _fill(v, parts) for k, v in data.items()}
    return data


async def join(client: Eio3Client, ident: Identity, port: int) -> list[Any]:
    """The real client's two-step challenge join; the final ack, or the
    first step's error."""
    addr = ident.address(port)
    reply = await client.call("ss-join", addr, ident.marshalled_public_key.hex())
    if reply[0] is not None:
        return reply
    return await client.call("ss-join", addr, ident.sign_hex(reply[1]))


async def joined(port: int, local: str | None = None) -> tuple[Eio3Client, str]:
    """A new connection with a new identity, joined; and its address."""
    client = await Eio3Client.connect(port, local=local)
    ident = Identity.generate()
    assert (await join(client, ident, port))[:2] == [None, None]
    return client, ident.address(port)


#: The relayed chunk size the flow-control tests send.
CHUNK = 64 * 1024


def chunk(i: int) -> bytes:
    """The ``i``-th test chunk, told apart from its neighbours by its bytes."""
    return bytes([i % 251]) * CHUNK


async def open_relay(a: Eio3Client, addr_a: str, b: Eio3Client, addr_b: str, dial_id: str) -> None:
    """``a`` dials ``b`` and the relay ``dial_id`` opens both ways, as the
    real client does it; both collect the chunks they receive."""
    a.collect_chunks = b.collect_chunks = True
    dial = asyncio.ensure_future(a.call("ss-dial", addr_a, addr_b, dial_id))
    await b.next_event("ss-incomming")
    await b.accept_dial(dial_id)
    assert await asyncio.wait_for(dial, TIMEOUT) == []
    await a.emit(f"socket.io-pull-stream.accept.{dial_id}.listener")


async def blast(client: Eio3Client, stream: str, count: int) -> None:
    """Send ``count`` test chunks on ``stream`` as fast as the socket takes them."""
    for i in range(count):
        await client.emit(f"socket.io-pull-stream.queue.{stream}", chunk(i))
