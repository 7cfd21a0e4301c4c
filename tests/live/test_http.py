"""HTTP routes: landing page, health, metrics (names and counting)."""

from __future__ import annotations

import re

import aiohttp

from tests.support.eio3 import Eio3Client
from tests.support.identity import Identity
from tests.support.live import LiveServer, live_server
from tests.support.wait import eventually
from wsstar.server.http import plural
from wsstar.wire.reasons import Reason


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


async def test_landing_page_and_health(server: LiveServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/") as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            page = await resp.text()
        assert f"/ip4/127.0.0.1/tcp/{server.port}/ws/p2p-websocket-star" in page
        assert 'id="peers">0</span> <span id="peers-noun">peers</span>' in page
        assert "<title>wsstar rendezvous server</title>" in page
        assert "Crypto challenge: <b>on</b>" in page
        assert "strict multiaddr check: <b>on</b>" in page
        assert "setInterval(refresh" in page
        async with http.get(server.url + "/health") as resp:
            assert resp.status == 200
            health = await resp.json()
        assert health["status"] == "ok"
        assert health["peers"] == 0
        assert len(health["instance"]) == 16
        async with http.get(server.url + "/nope") as resp:
            assert resp.status == 404


async def test_metrics_have_the_reference_series_and_count_each_request_once(
    server: LiveServer,
) -> None:
    a, b = await Eio3Client.connect(server.port), await Eio3Client.connect(server.port)
    ia, ib = Identity.generate(), Identity.generate()
    try:
        for client, ident in ((a, ia), (b, ib)):
            addr = ident.address(server.port)
            _, nonce = await client.call("ss-join", addr, ident.marshalled_public_key.hex())
            await client.call("ss-join", addr, ident.sign_hex(nonce))
        addr = ia.address(server.port)
        _, nonce = await a.call("ss-join", addr, ia.marshalled_public_key.hex())
        assert await a.call("ss-join", addr, "00" * 64) == [Reason.SIGNATURE_INVALID.value]
        assert await a.call("ss-dial", addr, "/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star", "d") == [
            Reason.PEER_NOT_FOUND.value
        ]
        async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        assert (
            "# HELP rendezvous_joins_total_success sucessfully completed joins since server started"
            in text
        )
        assert "# TYPE rendezvous_dials_total_success counter" in text
        assert metric(text, "rendezvous_peers") == 2
        assert metric(text, "rendezvous_joins_total_success") == 2
        assert metric(text, "rendezvous_joins_total_failure") == 1
        assert metric(text, "rendezvous_joins_total") == 3
        assert metric(text, "rendezvous_dials_total") == 1
        assert metric(text, "rendezvous_dials_total_failure") == 1
        assert metric(text, "wsstar_connected_sockets") == 2
        assert "process_resident_memory_bytes" in text
    finally:
        await a.close()
        await b.close()
    await eventually(lambda: len(server.service.core.directory) == 0)
    # Nothing of the departed sockets is left in the Socket.IO layer either.
    await eventually(lambda: "/" not in server.service.sio.manager.rooms)
    assert server.service.sio.manager.callbacks == {}


async def test_metrics_can_be_disabled() -> None:
    async with (
        live_server(metrics=False) as srv,
        aiohttp.ClientSession() as http,
        http.get(srv.url + "/metrics") as resp,
    ):
        assert resp.status == 404


def test_landing_page_plurals() -> None:
    assert [plural(n, "peer") for n in (0, 1, 2)] == ["peers", "peer", "peers"]
