"""One connect / join / dial / disconnect cycle, the unit of the leak test and
of ``bench/leak.py``: the same traffic in both, so the script's figures and
the test's table checks describe one thing."""

from __future__ import annotations

import asyncio
import socket
import struct

from tests.support.eio3 import Eio3Client, joined


def reset(client: Eio3Client) -> None:
    """Drop the connection with a TCP RST, as a crashed peer or a NAT would."""
    sock = client.ws.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.ws._conn.transport.abort()


async def cycle(port: int, i: int) -> None:
    """Two fresh peers join (with the challenge) and one dials the other.

    Every third cycle the listener resets its TCP connection before answering
    the dial; every third the dialer resets it mid-stream; the rest close
    normally after relaying 1000 bytes.
    """
    (a, addr_a), (b, addr_b) = await joined(port), await joined(port)
    try:
        dial_id = f"cycle-{i}"
        dial = asyncio.ensure_future(a.call("ss-dial", addr_a, addr_b, dial_id))
        await b.next_event("ss-incomming")
        if i % 3 == 0:
            reset(b)
            if (await dial)[0] is None:
                raise AssertionError("a dial whose listener is gone succeeded")
            return
        await b.accept_dial(dial_id)
        if await dial != []:
            raise AssertionError("an accepted dial failed")
        await a.emit(f"socket.io-pull-stream.accept.{dial_id}.listener")
        await a.emit(f"socket.io-pull-stream.queue.{dial_id}.dialer", b"x" * 1000)
        if i % 3 == 1:
            reset(a)
    finally:
        await a.close()
        await b.close()
