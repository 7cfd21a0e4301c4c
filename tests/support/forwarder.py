"""One loopback port in front of several servers, as a load balancer is.

The published client dials only addresses that name the server URL its own
listener joined, and behind a real balancer every node shares that URL.  In
a test each node has a port of its own, so the clients connect here instead,
and the test says which node each new connection goes to.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

#: Bytes read at a time from either side.
CHUNK = 1 << 16


class Forwarder:
    """Forwards each accepted connection to 127.0.0.1:``target``, as set when it arrives."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self._pipes: set[asyncio.Task[None]] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, target: int) -> AsyncIterator[Forwarder]:
        forwarder = cls(target)
        server = await asyncio.start_server(forwarder._accept, "127.0.0.1", 0)
        forwarder.port = server.sockets[0].getsockname()[1]
        try:
            yield forwarder
        finally:
            server.close()
            await forwarder.cut()
            await server.wait_closed()

    async def cut(self) -> None:
        """Close every forwarded connection, as a balancer restarting does."""
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(_pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(CHUNK):
            sink.write(data)
            await sink.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            sink.close()
