"""Private swarms with live reload, CORS, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.live.test_process import TIMEOUT, free_port
from tests.support.eio3 import Eio3Client, join
from tests.support.identity import Identity
from tests.support.live import live_server
from wsstar.wire.reasons import Reason


async def test_allow_list_reloads_on_sighup_without_dropping_anyone(tmp_path: Path) -> None:
    first, second = Identity.generate(), Identity.generate()
    peers = tmp_path / "peers"
    peers.write_text(first.peer_id + "\n")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wsstar", "--host", "127.0.0.1", "--port", str(port),
        "--allow-peers", str(peers),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        a, b = await Eio3Client.connect(port), await Eio3Client.connect(port)
        try:
            assert (await join(a, first, port))[:2] == [None, None]
            assert await join(b, second, port) == [Reason.PEER_NOT_ALLOWED.value]
            peers.write_text(second.peer_id + "\n")
            os.kill(proc.pid, signal.SIGHUP)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + TIMEOUT
            while (reply := await join(b, second, port)) == [Reason.PEER_NOT_ALLOWED.value]:
                assert loop.time() < deadline
                await asyncio.sleep(0.05)
            # The first peer, no longer listed, was neither dropped nor unjoined.
            assert reply == [None, None, [first.address(port)]]
            assert not a.closed.is_set()
        finally:
            await a.close()
            await b.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0


async def test_cors_origins_apply_to_http_and_the_socket_handshake(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        live_server(cors_origins=("https://app.example",)) as srv,
        aiohttp.ClientSession() as http,
    ):
        good = {"Origin": "https://app.example"}
        async with http.get(srv.url + "/health", headers=good) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
        async with http.get(srv.url + "/health", headers={"Origin": "https://evil.example"}) as r:
            assert "Access-Control-Allow-Origin" not in r.headers
        url = f"ws://127.0.0.1:{srv.port}/socket.io/?EIO=3&transport=websocket"
        async with http.ws_connect(url, headers=good) as ws:
            assert (await ws.receive_str()).startswith("0{")
        with caplog.at_level(logging.DEBUG):
            for _ in range(5):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(url, headers={"Origin": "https://evil.example"})
                assert refused.value.status == 400
        async with http.get(srv.url + "/metrics") as resp:
            assert 'wsstar_refused_total{limit="origin"} 5.0' in await resp.text()
    # One line in wsstar's words for the address, none of the engine's own.
    lines = [r for r in caplog.records if "evil.example" in r.getMessage()]
    assert [(r.name, r.getMessage()) for r in lines] == [
        (
            "wsstar",
            "connection from 127.0.0.1 refused: origin https://evil.example is not in "
            "--cors-origins",
        )
    ]


async def test_shutdown_waits_for_dials_in_flight_then_closes_everything() -> None:
    srv_cm = live_server(dial_timeout=30.0, shutdown_grace=5.0)
    srv = await srv_cm.__aenter__()
    a, b = await Eio3Client.connect(srv.port), await Eio3Client.connect(srv.port)
    ia, ib = Identity.generate(), Identity.generate()
    try:
        await join(a, ia, srv.port)
        await join(b, ib, srv.port)
        dial = asyncio.ensure_future(
            a.call("ss-dial", ia.address(srv.port), ib.address(srv.port), "g")
        )
        await b.next_event("ss-incomming")
        stopping = asyncio.ensure_future(srv_cm.__aexit__(None, None, None))
        await asyncio.sleep(0.2)
        assert not stopping.done()  # waiting for the dial
        await b.accept_dial("g")
        assert await asyncio.wait_for(dial, TIMEOUT) == []
        await asyncio.wait_for(stopping, TIMEOUT)
        await asyncio.wait_for(a.closed.wait(), TIMEOUT)
        await asyncio.wait_for(b.closed.wait(), TIMEOUT)
    finally:
        await a.close()
        await b.close()
