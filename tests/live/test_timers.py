"""Re-announcements and dial timeouts, on a live server with short timers."""

from __future__ import annotations

import asyncio

from tests.support.eio3 import TIMEOUT, Eio3Client, joined
from tests.support.identity import Identity
from tests.support.live import live_server
from tests.support.wait import eventually
from wsstar.wire.reasons import Reason


async def test_every_peer_is_re_announced_every_interval() -> None:
    async with live_server(announce_interval=0.3) as srv:
        (a, addr_a), (b, addr_b) = await joined(srv.port), await joined(srv.port)
        try:
            assert await a.next_event("ws-peer") == ("ws-peer", [addr_b])  # at b's join
            for _ in range(3):
                assert await a.next_event("ws-peer", timeout=2) == ("ws-peer", [addr_b])
                assert await b.next_event("ws-peer", timeout=2) == ("ws-peer", [addr_a])
        finally:
            await a.close()
        # Once a is gone nobody hears about it any more.
        await eventually(lambda: len(srv.service.core.schedule) == 1)
        await b.close()


async def test_a_listener_that_never_answers_fails_the_dial_after_the_timeout() -> None:
    async with live_server(dial_timeout=0.5) as srv:
        (a, addr_a), (b, addr_b) = await joined(srv.port), await joined(srv.port)
        try:
            started = asyncio.get_running_loop().time()
            reply = await a.call("ss-dial", addr_a, addr_b, "silent", timeout=TIMEOUT)
            assert reply == [Reason.DIAL_TIMEOUT.value]
            assert asyncio.get_running_loop().time() - started >= 0.5
            await b.next_event("ss-incomming")  # it was asked, and said nothing
            core = srv.service.core
            assert core.pending_dials() == 0
            assert len(core.streams) == 0
            assert core.stats.dials_failure == 1
        finally:
            await a.close()
            await b.close()


async def test_a_listener_that_disconnects_fails_the_dial_at_once() -> None:
    async with live_server(dial_timeout=30) as srv:
        (a, addr_a), (b, addr_b) = await joined(srv.port), await joined(srv.port)
        try:
            dial = asyncio.ensure_future(a.call("ss-dial", addr_a, addr_b, "gone", timeout=5))
            await b.next_event("ss-incomming")
            await b.close()
            assert await dial == [Reason.DIAL_TARGET_GONE.value]
        finally:
            await a.close()
        await eventually(lambda: srv.service.core.socket_count() == 0)
        assert len(srv.service._dials) == 0


async def test_a_reconnecting_client_takes_over_while_its_old_socket_times_out() -> None:
    async with live_server(ping_interval=0.3, ping_timeout=0.3) as srv:
        ident = Identity.generate()
        addr = ident.address(srv.port)

        async def join_as(client: Eio3Client) -> list[object]:
            _, nonce = await client.call("ss-join", addr, ident.marshalled_public_key.hex())
            return await client.call("ss-join", addr, ident.sign_hex(nonce))

        old = await Eio3Client.connect(srv.port, keepalive=False)
        new = await Eio3Client.connect(srv.port)
        watcher, watcher_addr = await joined(srv.port)
        try:
            assert (await join_as(old))[:2] == [None, None]
            # The old connection goes silent (no pings); the client comes back
            # on a new one and joins the same address before the old one dies.
            assert await join_as(new) == [None, None, [watcher_addr]]
            core = srv.service.core
            new_sid = core.directory.owner(addr)
            await asyncio.wait_for(old.closed.wait(), TIMEOUT)
            await eventually(lambda: core.socket_count() == 2)
            # The old socket's departure left the address with its new owner.
            assert core.directory.owner(addr) == new_sid
            # And a dial to it reaches the new connection.
            dial = asyncio.ensure_future(watcher.call("ss-dial", watcher_addr, addr, "after"))
            assert (await new.next_event("ss-incomming"))[1] == ["after", watcher_addr]
            dial.cancel()
        finally:
            for client in (old, new, watcher):
                await client.close()
