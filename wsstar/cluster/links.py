"""Node links: direct TCP connections between cluster nodes, for relays.

Dials and relayed bytes between sockets on different nodes do not go through
Redis: pub/sub drops a subscriber that falls behind, and every byte would
cross Redis twice.  Each node listens on a link port and publishes its
address, and a token, in its liveness key; a node that has something for
another connects to it, presents that node's token (so only a process that
can read the cluster's Redis can talk on a link) and then only writes.
Frames from A to B therefore travel on A's connection, in the order A sent
them, and B answers on its own connection to A.

Flow control has two levels.  A link whose socket buffer is over
``high_water`` is *full*: the service holds the sources writing into it
until it drains (TCP back-pressure from the other node).  Per-receiver
fullness travels as messages (see :mod:`wsstar.server.crossing`), so that
one slow receiver does not stall a whole link.

A link that breaks, either way, ends every relay between the two nodes for
the survivors: the other node may be gone, and nothing it held can be trusted
to arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from wsstar.cluster import frames
from wsstar.directory import NodeId

log = logging.getLogger("wsstar.cluster")

#: Seconds to connect to another node and present the token.
CONNECT_TIMEOUT = 3.0
#: Bytes queued on a link before its senders are held, and when they resume.
HIGH_WATER, LOW_WATER = 1024 * 1024, 256 * 1024


@dataclass(frozen=True, slots=True)
class LinkAddress:
    """Where a node's link listens, and the token it expects."""

    host: str
    port: int
    token: str


class LinkHandler(Protocol):
    """What the node's service does with its links."""

    def link_message(self, node: NodeId, header: frames.Header, payload: bytes) -> None:
        """A frame from ``node``."""

    def link_lost(self, node: NodeId) -> None:
        """The link to or from ``node`` broke or could not be made."""

    def link_ready(self, node: NodeId) -> None:
        """The link to ``node`` drained below its low-water mark."""


Lookup = Callable[[NodeId], Awaitable[LinkAddress | None]]


class _Outbound:
    """This node's connection to another: frames queue here until it is made."""

    def __init__(self, node: NodeId) -> None:
        self.node = node
        self.writer: asyncio.StreamWriter | None = None
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.task: asyncio.Task[None] | None = None
        self.drain: asyncio.Task[None] | None = None

    def buffered(self) -> int:
        if self.writer is None:
            return self.pending_bytes
        return self.writer.transport.get_write_buffer_size()


class NodeLinks:
    """The links of one node: a listener for others' connections, and one
    outgoing connection per node it has something for."""

    def __init__(self, node: NodeId, handler: LinkHandler, lookup: Lookup) -> None:
        self.node = node
        self.token = secrets.token_hex(16)
        self._handler = handler
        self._lookup = lookup
        self._out: dict[NodeId, _Outbound] = {}
        self._server: asyncio.Server | None = None
        self._inbound: dict[NodeId, asyncio.StreamWriter] = {}
        #: Every accepted connection, presented or not, to close on stopping.
        self._accepted_writers: set[asyncio.StreamWriter] = set()
        self._readers: set[asyncio.Task[None]] = set()
        #: Bytes written to and read from other nodes, for the metrics.
        self.bytes_out = 0
        self.bytes_in = 0

    async def listen(self, host: str, port: int) -> int:
        """Start accepting other nodes' links; returns the port bound."""
        self._server = await asyncio.start_server(self._accepted, host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._out.values()):
            self._drop(link)
        # Closing the connections ends their readers; cancelling is the last
        # resort for one that does not end.
        for writer in list(self._accepted_writers):
            writer.close()
        if self._readers:
            await asyncio.wait(self._readers, timeout=2)
        for task in list(self._readers):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    # -- sending ---------------------------------------------------------------------

    def send(self, node: NodeId, header: frames.Header, payload: bytes = b"") -> None:
        """Queue a frame for ``node``, connecting first if need be."""
        frame = frames.encode(header, payload)
        self.bytes_out += len(payload)
        link = self._out.get(node)
        if link is None:
            link = self._out[node] = _Outbound(node)
            link.task = asyncio.get_running_loop().create_task(self._connect(link))
        if link.writer is None:
            link.pending.append(frame)
            link.pending_bytes += len(frame)
        else:
            link.writer.write(frame)
        if link.buffered() > HIGH_WATER and link.drain is None and link.writer is not None:
            link.drain = asyncio.get_running_loop().create_task(self._drain(link))

    def queued(self) -> int:
        """Bytes waiting on every outgoing link."""
        return sum(link.buffered() for link in self._out.values())

    def full(self, node: NodeId) -> bool:
        """Whether frames for ``node`` are backing up: its senders should wait."""
        link = self._out.get(node)
        return link is not None and link.buffered() > HIGH_WATER

    async def _drain(self, link: _Outbound) -> None:
        assert link.writer is not None
        try:
            await link.writer.drain()
        except (ConnectionError, OSError):
            return  # the reader side reports the loss
        finally:
            link.drain = None
        if self._out.get(link.node) is link:
            self._handler.link_ready(link.node)

    async def _connect(self, link: _Outbound) -> None:
        try:
            address = await self._lookup(link.node)
            if address is None:
                raise ConnectionError("it is not listed in Redis")
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address.host, address.port), CONNECT_TIMEOUT
            )
        except (OSError, ConnectionError, TimeoutError) as exc:
            log.warning("no link to cluster node %s: %s", link.node, exc)
            self._lost(link)
            return
        writer.transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        writer.write(frames.encode(["hello", self.node, address.token]))
        for frame in link.pending:
            writer.write(frame)
        link.pending.clear()
        link.pending_bytes = 0
        link.writer = writer
        if link.buffered() > HIGH_WATER:
            link.drain = asyncio.create_task(self._drain(link))
        else:
            self._handler.link_ready(link.node)
        # Nothing is read on an outgoing link; its end means the other node
        # closed it (stopped, or restarted).
        with contextlib.suppress(ConnectionError, OSError):
            await reader.read()
        self._lost(link)

    def _lost(self, link: _Outbound) -> None:
        if self._out.get(link.node) is link:
            self._drop(link)
            self._handler.link_lost(link.node)

    def _drop(self, link: _Outbound) -> None:
        self._out.pop(link.node, None)
        if link.writer is not None:
            link.writer.close()
        for task in (link.task, link.drain):
            if task is not None and task is not asyncio.current_task():
                task.cancel()

    def forget(self, node: NodeId) -> None:
        """``node`` is gone: drop the links to and from it without reporting."""
        link = self._out.get(node)
        if link is not None:
            self._drop(link)
        writer = self._inbound.pop(node, None)
        if writer is not None:
            writer.close()

    # -- receiving -------------------------------------------------------------------

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._readers.add(task)
        self._accepted_writers.add(writer)
        node: NodeId | None = None
        decoder = frames.FrameReader()
        try:
            node, early = await asyncio.wait_for(self._hello(reader, decoder), CONNECT_TIMEOUT)
            if node is None:
                return
            previous = self._inbound.pop(node, None)
            if previous is not None:
                previous.close()
            self._inbound[node] = writer
            for header, payload in early:
                self._handler.link_message(node, header, payload)
            while data := await reader.read(256 * 1024):
                for header, payload in decoder.feed(data):
                    self.bytes_in += len(payload)
                    self._handler.link_message(node, header, payload)
        except frames.BadFrame as exc:
            log.warning("closing the link from cluster node %s: %s", node or "?", exc)
        except (ConnectionError, OSError, TimeoutError, asyncio.CancelledError):
            # Cancelled only when stopping: the server's callback would
            # report a cancelled handler as an error.
            pass
        finally:
            self._readers.discard(task)
            self._accepted_writers.discard(writer)
            writer.close()
            if node is not None and self._inbound.get(node) is writer:
                del self._inbound[node]
                self._handler.link_lost(node)

    async def _hello(
        self, reader: asyncio.StreamReader, decoder: frames.FrameReader
    ) -> tuple[NodeId | None, list[tuple[frames.Header, bytes]]]:
        """The connecting node's id, if it presented this node's token, and
        the frames that came with its hello."""
        while data := await reader.read(4096):
            got = decoder.feed(data)
            if not got:
                continue
            header = got[0][0]
            if (
                len(header) == 3
                and header[0] == "hello"
                and isinstance(header[1], str)
                and secrets.compare_digest(str(header[2]), self.token)
            ):
                return NodeId(header[1]), got[1:]
            log.warning("refused a link: it did not present this node's token")
            return None, []
        return None, []
