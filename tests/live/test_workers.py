"""``--workers``: several processes on one port are one swarm; long-polling
works whichever worker each request reaches; a worker that dies is started
again; the whole server stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from tests.support.cluster import health, until_health
from tests.support.eio3 import TIMEOUT, Eio3Client, join
from tests.support.identity import Identity
from tests.support.redis import RedisServer
from tests.support.subject import Subject
from tests.support.v4 import V4Peer

WORKERS = 3


@contextlib.asynccontextmanager
async def served() -> AsyncIterator[Subject]:
    async with (
        RedisServer.running() as redis,
        Subject.running("--workers", str(WORKERS), "--redis-url", redis.url) as server,
    ):
        yield server


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (those of any of its threads)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(c) for c in (task / "children").read_text().split())
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "zombie" not in status


async def instances(server: Subject) -> set[str]:
    """The workers that answer /health, each asked on a new connection,
    until all have answered or the time is up."""
    seen: set[str] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while len(seen) < WORKERS and loop.time() < deadline:
        seen.add((await health(server))["instance"])
    return seen


async def test_workers_share_one_port_and_are_one_swarm() -> None:
    async with served() as server:
        assert len(children(server.proc.pid)) == WORKERS
        assert len(await instances(server)) == WORKERS
        await until_health(server, lambda h: h["cluster"]["nodes"] == WORKERS)
        # Clients on whichever workers the kernel chose find each other and relay.
        a = await Eio3Client.connect(server.port)
        ia = Identity.generate()
        assert (await join(a, ia, server.port))[:2] == [None, None]
        peers: list[Eio3Client] = []
        try:
            for _ in range(4):
                b = await Eio3Client.connect(server.port)
                peers.append(b)
                ib = Identity.generate()
                reply = await join(b, ib, server.port)
                assert ia.address(server.port) in reply[2]
                dial_id = f"d{len(peers)}"
                dial = asyncio.ensure_future(
                    b.call("ss-dial", ib.address(server.port), ia.address(server.port), dial_id)
                )
                await a.next_event("ss-incomming")
                await a.accept_dial(dial_id)
                assert await asyncio.wait_for(dial, TIMEOUT) == []
        finally:
            for client in (a, *peers):
                await client.close()


async def test_long_polling_works_whichever_worker_each_request_reaches() -> None:
    async with served() as server:
        # Every request on a new connection, so the kernel picks a worker for each.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            base = f"{server.url}/socket.io/?EIO=4&transport=polling"
            async with http.get(base) as resp:
                text = await resp.text()
            sid = json.loads(text[1:])["sid"]
            url = f"{base}&sid={sid}"
            async with http.post(url, data="40") as resp:
                assert resp.status == 200, await resp.text()
            async with http.get(url) as resp:
                assert (await resp.text()).startswith("40")
            for _ in range(10):
                async with http.post(url, data='42["ss-leave","x"]') as resp:
                    assert resp.status == 200, await resp.text()
        # And a python-socketio v4 client on polling, upgrading when it can.
        v4 = V4Peer()
        await v4.connect(server.url, transports=("polling", "websocket"))
        try:
            assert (await v4.join(server.port))[:2] == [None, None]
            other = V4Peer()
            await other.connect(server.url, transports=("polling",))
            try:
                reply = await other.join(server.port)
                assert v4.ident.address(server.port) in reply[2]
            finally:
                await other.sio.disconnect()
        finally:
            await v4.sio.disconnect()


async def test_a_dead_worker_is_started_again_and_the_server_stops_cleanly() -> None:
    async with served() as server:
        before = children(server.proc.pid)
        os.kill(before[0], signal.SIGKILL)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            now = children(server.proc.pid)
            if len(now) == WORKERS and before[0] not in now:
                break
            assert loop.time() < deadline, now
            await asyncio.sleep(0.1)
        assert any("worker" in line and "starting it again" in line for line in server.log)
        assert len(await instances(server)) == WORKERS
        server.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.proc.wait(), 20) == 0
        assert not any(alive(pid) for pid in now)
