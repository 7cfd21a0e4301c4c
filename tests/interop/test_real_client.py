"""The published libp2p-websocket-star@0.10.2 client against the server.

Every node here is the real npm package with its own peer-id and libp2p-crypto
(tests/interop/package-lock.json), driven through tests/interop/agent.js.
"""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
import pytest

from tests.interop.conftest import TARGET, Rendezvous
from tests.interop.harness import AgentError, NodeAgent
from tests.support.v4 import V4Peer

MIB = 1024 * 1024


async def listening(
    agent: NodeAgent, server: Rendezvous, name: str, key_type: str = "ed25519"
) -> str:
    await agent.request("create", name=name, keyType=key_type)
    reply = await agent.request("listen", name=name, server=server.ws_star_addr)
    addr: str = reply["addr"]
    return addr


async def test_two_rsa_nodes_discover_each_other(rendezvous: Rendezvous, agent: NodeAgent) -> None:
    a = await listening(agent, rendezvous, "a", "rsa")
    b = await listening(agent, rendezvous, "b", "rsa")
    # b learns a from the join ack, a learns b from ws-peer.
    assert (await agent.next_event("peer", lambda e: e["node"] == "b"))["addr"] == a
    assert (await agent.next_event("peer", lambda e: e["node"] == "a"))["addr"] == b


@pytest.mark.parametrize("key_type", ["rsa", "ed25519", "secp256k1"])
async def test_one_mib_echo_both_ways(
    rendezvous: Rendezvous, agent: NodeAgent, key_type: str
) -> None:
    a = await listening(agent, rendezvous, "a", key_type)
    b = await listening(agent, rendezvous, "b", key_type)
    for dialer, target in (("b", a), ("a", b)):
        result = await agent.request("dial_echo", name=dialer, addr=target, bytes=MIB, timeout=60)
        assert result["bytes"] == MIB
        assert result["received"] == result["sent"]


async def test_dial_to_an_offline_peer_fails_with_peer_not_found(
    rendezvous: Rendezvous, agent: NodeAgent
) -> None:
    await listening(agent, rendezvous, "a")
    offline = rendezvous.ws_star_addr + "/ipfs/QmWHKoNV8TnVMhedbxHxDDpFFsi5BToKNuAjVKAWbjRGK7"
    reply = await agent.try_request("dial", name="a", addr=offline)
    assert reply == {"id": reply["id"], "ok": False, "error": "Peer not found"}


async def test_twenty_parallel_dials_all_echo(rendezvous: Rendezvous, agent: NodeAgent) -> None:
    a = await listening(agent, rendezvous, "a")
    await listening(agent, rendezvous, "b")
    reply = await agent.request(
        "parallel_dial_echo", name="b", addr=a, count=20, bytes=64 * 1024, timeout=60
    )
    results = reply["results"]
    assert len(results) == 20
    assert all("error" not in r and r["received"] == r["sent"] for r in results), results


async def test_a_node_that_closes_disappears(rendezvous: Rendezvous, agent: NodeAgent) -> None:
    a = await listening(agent, rendezvous, "a")
    b = await listening(agent, rendezvous, "b")
    await agent.request("dial", name="a", addr=b)
    await agent.request("close", name="b")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        reply = await agent.try_request("dial", name="a", addr=b)
        if reply.get("error") == "Peer not found":
            break
        assert loop.time() < deadline, reply
        await asyncio.sleep(0.05)
    # The survivor is still joined and reachable.
    await listening(agent, rendezvous, "c")
    result = await agent.request("dial_echo", name="c", addr=a, bytes=1024)
    assert result["received"] == result["sent"]


async def _open_echoing_stream(agent: NodeAgent, dialer: str, addr: str, stream: str) -> None:
    """Dial, send 1000 bytes and wait until their echo is back: the relayed
    connection is flowing both ways."""
    await agent.request("open_stream", name=dialer, addr=addr, stream=stream)
    await agent.request("write", stream=stream, bytes=1000)
    await agent.next_event("stream_data", lambda e: e["stream"] == stream and e["bytes"] == 1000)


@pytest.mark.parametrize("leaver", ["listener", "dialer"])
async def test_a_peer_leaving_mid_stream_ends_the_other_side(
    rendezvous: Rendezvous, agent: NodeAgent, leaver: str
) -> None:
    a = await listening(agent, rendezvous, "a")  # listens and echoes
    b = await listening(agent, rendezvous, "b")  # dials
    await _open_echoing_stream(agent, "b", a, "s")
    if leaver == "listener":
        await agent.request("drop", name="a")
        end = await agent.next_event("stream_end", lambda e: e["stream"] == "s")
        assert end["bytes"] == 1000
        survivor = b
    else:
        await agent.request("drop", name="b")
        end = await agent.next_event("echo_end", lambda e: e["node"] == "a")
        assert end == {"event": "echo_end", "node": "a", "bytes": 1000, "error": None}
        survivor = a
    # The one left behind is still joined and reachable.
    await listening(agent, rendezvous, "c")
    result = await agent.request("dial_echo", name="c", addr=survivor, bytes=4096)
    assert result["received"] == result["sent"]


async def test_listen_with_someone_elses_peer_id_fails(
    rendezvous: Rendezvous, agent: NodeAgent
) -> None:
    await agent.request("create", name="a", keyType="ed25519")
    await agent.request("create", name="b", keyType="ed25519")
    other = (await agent.request("create", name="c", keyType="ed25519"))["peerId"]
    reply = await agent.try_request(
        "listen", name="a", addr=f"{rendezvous.ws_star_addr}/ipfs/{other}"
    )
    assert reply["ok"] is False
    assert reply["error"]


@pytest.mark.wsstar_only("the reference cannot serve Socket.IO v4 clients")
async def test_v2_node_and_v4_client_see_each_other(
    rendezvous: Rendezvous, agent: NodeAgent
) -> None:
    node_addr = await listening(agent, rendezvous, "a")
    v4 = V4Peer()
    await v4.connect(rendezvous.url)
    try:
        reply = await v4.join(rendezvous.port)
        assert reply == [None, None, [node_addr]]
        v4_addr = v4.ident.address(rendezvous.port)
        # The npm node hears about the v4 client...
        event = await agent.next_event("peer", lambda e: e["node"] == "a" and e["addr"] == v4_addr)
        assert event["id"] == v4.ident.peer_id
        # ...and the v4 client can dial the npm node, which accepts.
        accepted = await v4.sio.call("ss-dial", (v4_addr, node_addr, "cross-1"), timeout=10)
        assert accepted is None  # an empty ack: the dial succeeded
    finally:
        await v4.sio.disconnect()


@pytest.mark.wsstar_only("metrics and /health are wsstar's")
async def test_peer_count_follows_joins_and_leaves(
    rendezvous: Rendezvous, agent: NodeAgent
) -> None:
    await listening(agent, rendezvous, "a")
    await listening(agent, rendezvous, "b")
    async with aiohttp.ClientSession() as http:
        async with http.get(rendezvous.url + "/health") as resp:
            assert (await resp.json())["peers"] == 2
        await agent.request("close", name="b")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            async with http.get(rendezvous.url + "/health") as resp:
                if (await resp.json())["peers"] == 1:
                    break
            assert loop.time() < deadline
            await asyncio.sleep(0.05)


async def test_agent_reports_errors_as_replies(agent: NodeAgent) -> None:
    with pytest.raises(AgentError, match="no node named"):
        await agent.request(
            "listen", name="nobody", server="/ip4/127.0.0.1/tcp/1/ws/p2p-websocket-star"
        )


async def _metric(http: aiohttp.ClientSession, server: Rendezvous, name: str) -> float:
    async with http.get(server.url + "/metrics") as resp:
        page = await resp.text()
    for line in page.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_a_fast_sender_to_a_throttled_reader_loses_nothing(
    rendezvous: Rendezvous, agent: NodeAgent
) -> None:
    """32 MiB written as fast as the socket takes it, to a node that reads
    in short bursts (its process is stopped most of the time)."""
    reader = await NodeAgent.start()
    try:
        await listening(agent, rendezvous, "sender")
        await reader.request("create", name="reader", keyType="ed25519")
        target = (
            await reader.request("listen", name="reader", server=rendezvous.ws_star_addr, sink=True)
        )["addr"]
        peak = 0.0

        async def watch() -> None:
            nonlocal peak
            async with aiohttp.ClientSession() as http:
                while True:
                    paused = await _metric(http, rendezvous, "wsstar_relay_paused_senders")
                    peak = max(peak, paused)
                    await asyncio.sleep(0.05)

        throttle = asyncio.ensure_future(_throttle(reader.pid))
        watcher = asyncio.ensure_future(watch()) if TARGET == "wsstar" else None
        try:
            sent = await agent.request(
                "dial_send", name="sender", addr=target, bytes=32 * MIB, timeout=120
            )
            received = await reader.next_event("sink_end", timeout=120)
        finally:
            throttle.cancel()
            if watcher is not None:
                watcher.cancel()
            os.kill(reader.pid, signal.SIGCONT)
        assert received["bytes"] == 32 * MIB and received["error"] is None
        assert received["sha256"] == sent["sent"]
        if TARGET == "wsstar":
            # Flow control held the sender; nothing was cut.
            assert peak >= 1
            async with aiohttp.ClientSession() as http:
                assert await _metric(http, rendezvous, "wsstar_relay_overflows_total") == 0
    finally:
        await reader.stop()


async def _throttle(pid: int) -> None:
    """Let the process run 20 ms in every 200 ms, for at most a minute."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(0.18)
        os.kill(pid, signal.SIGCONT)
        await asyncio.sleep(0.02)
