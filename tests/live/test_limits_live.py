"""Limits on a live server: refused connections, rate-limited requests, proxies."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support.eio3 import Eio3Client, join
from tests.support.identity import Identity
from tests.support.live import live_server
from tests.support.wait import eventually
from wsstar.server.admission import Limits
from wsstar.wire.reasons import Reason

JOIN_RATE_LIMITED = Reason.JOIN_RATE_LIMITED.value
DIAL_RATE_LIMITED = Reason.DIAL_RATE_LIMITED.value
EVENT_RATE_LIMITED = Reason.EVENT_RATE_LIMITED.value


async def test_connections_over_the_per_address_cap_are_refused_cleanly() -> None:
    async with live_server(limits=Limits(max_connections_per_ip=2, limit_loopback=True)) as srv:
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
    limits = Limits(
        joins_per_ip_per_second=1.0,
        dials_per_ip_per_second=1.0,
        max_connections_per_ip=1,
        limit_loopback=True,
    )
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
    # A slow refill (one event a second) keeps the checks below from racing
    # the bucket on a busy machine.
    async with live_server(limits=Limits(events_per_connection_per_second=1.0)) as srv:
        flooder = await Eio3Client.connect(srv.port)
        try:
            for i in range(500):
                await flooder.send_raw(f'42["no-such-event",{i}]')
            limited = await flooder.call("no-such-event")
            assert limited == [EVENT_RATE_LIMITED]
            # Events without a name are answered too, so they count as well.
            assert await flooder.call_raw("[5]") == [EVENT_RATE_LIMITED]
            # A connection that keeps at it is closed at its thousandth refusal
            # in a row.
            for i in range(10_000):
                if flooder.closed.is_set():
                    break
                await flooder.send_raw(f'42["no-such-event",{i}]')
            await asyncio.wait_for(flooder.closed.wait(), 10)
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
            assert 990 <= srv.service.admission.refused["events"] <= 1010
        finally:
            await flooder.close()


async def test_a_local_swarm_joining_at_once_is_never_refused() -> None:
    # 300 joins from 127.0.0.1 within moments, as a project's CI run does,
    # on more connections than one address may hold.
    async with live_server() as srv:
        clients = await asyncio.gather(*(Eio3Client.connect(srv.port) for _ in range(300)))
        try:
            replies = await asyncio.gather(
                *(join(client, Identity.generate(), srv.port) for client in clients)
            )
            assert all(reply[:2] == [None, None] for reply in replies)
            assert sum(srv.service.admission.refused.values()) == 0
        finally:
            await asyncio.gather(*(client.close() for client in clients))


async def test_behind_a_trusted_proxy_one_address_gets_its_connections_and_a_rate() -> None:
    headers = {"X-Forwarded-For": "198.51.100.7"}
    async with live_server(trust_proxy=True) as srv:
        clients = await asyncio.gather(
            *(Eio3Client.connect(srv.port, headers=headers) for _ in range(256))
        )
        try:
            # All 256 rejoin at once, as after a restart: none is refused.
            replies = await asyncio.gather(
                *(join(client, Identity.generate(), srv.port) for client in clients)
            )
            assert all(reply[:2] == [None, None] for reply in replies)
            # The 257th connection from that address is refused...
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await Eio3Client.connect(srv.port, headers=headers)
            assert refused.value.status == 401
            # ...and a flood of joins from it is held to the rate.
            ident = Identity.generate()
            flood = [
                await clients[0].call(
                    "ss-join", ident.address(srv.port), ident.marshalled_public_key.hex()
                )
                for _ in range(200)
            ]
            # What refilled meanwhile (20 a second) is served, the rest not.
            limited = [r[0] for r in flood].count(JOIN_RATE_LIMITED)
            assert limited >= 100
            refused_counts = srv.service.admission.refused
            assert refused_counts["connections_per_ip"] == 1
            assert refused_counts["joins"] == limited
        finally:
            await asyncio.gather(*(client.close() for client in clients))


async def test_a_proxy_without_trust_proxy_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with live_server() as srv:
        for _ in range(3):
            client = await Eio3Client.connect(srv.port, headers={"X-Forwarded-For": "192.0.2.1"})
            await client.close()
    warnings = [r for r in caplog.records if "--trust-proxy" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
