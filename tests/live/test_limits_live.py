"""Limits on a live server: refused connections, rate-limited requests, proxies."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.eio3 import Eio3Client
from tests.support.identity import Identity
from tests.support.live import live_server
from tests.support.wait import eventually
from wsstar.server.admission import Limits
from wsstar.wire.reasons import Reason

JOIN_RATE_LIMITED = Reason.JOIN_RATE_LIMITED.value
DIAL_RATE_LIMITED = Reason.DIAL_RATE_LIMITED.value
EVENT_RATE_LIMITED = Reason.EVENT_RATE_LIMITED.value


async def test_connections_over_the_per_address_cap_are_refused_cleanly() -> None:
    async with live_server(limits=Limits(max_connections_per_ip=2)) as srv:
        a = await Eio3Client.connect(srv.port)
        b = await Eio3Client.connect(srv.port)
        try:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await Eio3Client.connect(srv.port)
            assert refused.value.status == 401
            assert srv.service.admission.refused["connections_per_ip"] == 1
            # Existing connections are untouched and a freed slot is reusable.
            assert await a.call("ss-dial", "/a", "/b", "c") == ["Not authorized for this address"]
            await b.close()
            await eventually(lambda: srv.service.admission.connections == 1)
            c = await Eio3Client.connect(srv.port)
            await c.close()
        finally:
            await a.close()
            await b.close()


async def test_join_and_dial_floods_are_rate_limited() -> None:
    limits = Limits(joins_per_ip_per_second=1.0, dials_per_ip_per_second=1.0)
    async with live_server(limits=limits) as srv:
        client = await Eio3Client.connect(srv.port)
        ident = Identity.generate()
        try:
            replies = [
                await client.call(
                    "ss-join", ident.address(srv.port), ident.marshalled_public_key.hex()
                )
                for _ in range(6)
            ]
            assert [r[0] for r in replies].count(JOIN_RATE_LIMITED) == 2
            dials = [await client.call("ss-dial", "/a", "/b", f"d{i}") for i in range(6)]
            assert dials.count([DIAL_RATE_LIMITED]) == 2
            async with aiohttp.ClientSession() as http, http.get(srv.url + "/metrics") as resp:
                text = await resp.text()
            assert 'wsstar_refused_total{limit="joins"} 2.0' in text
        finally:
            await client.close()


@pytest.mark.parametrize(("trust", "expected"), [(False, "127.0.0.1"), (True, "203.0.113.9")])
async def test_client_address_behind_a_proxy(trust: bool, expected: str) -> None:
    async with live_server(trust_proxy=trust) as srv, aiohttp.ClientSession() as http:
        url = f"ws://127.0.0.1:{srv.port}/socket.io/?EIO=3&transport=websocket"
        headers = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
        async with http.ws_connect(url, headers=headers) as ws:
            await ws.receive_str()
            await eventually(lambda: len(srv.service._clients) == 1)
            assert [c.session.remote for c in srv.service._clients.values()] == [expected]


async def test_an_event_flood_is_limited_and_others_are_unaffected() -> None:
    async with live_server() as srv:
        flooder = await Eio3Client.connect(srv.port)
        try:
            for i in range(10_000):
                await flooder.send_raw(f'42["no-such-event",{i}]')
            limited = await flooder.call("no-such-event")
            assert limited == [EVENT_RATE_LIMITED]
            # Events without a name are answered too, so they count as well.
            assert await flooder.call_raw("[5]") == [EVENT_RATE_LIMITED]
            # A well-behaved client on another connection is served as usual.
            other = await Eio3Client.connect(srv.port)
            ident = Identity.generate()
            try:
                addr = ident.address(srv.port)
                _, nonce = await other.call("ss-join", addr, ident.marshalled_public_key.hex())
                assert (await other.call("ss-join", addr, ident.sign_hex(nonce)))[:2] == [
                    None,
                    None,
                ]
            finally:
                await other.close()
            assert srv.service.admission.refused["events"] > 9000
        finally:
            await flooder.close()
