"""The attacks of the hardening work, as traffic against a server's port.

Each attack checks what the server answers (the defence that must hold) and
returns a line saying what happened.  ``size`` scales it: the live tests run
each small, ``bench/attacks.py`` runs the memory attacks at the sizes that
once exhausted the server, so that both describe the same traffic.  Every
attacker connects from 127.0.0.2 and up, the honest pair from 127.0.0.1, so
that the per-address limits tell them apart where a test turns them on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Awaitable, Callable

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.eio3 import TIMEOUT, Eio3Client, joined
from tests.support.identity import Identity, marshalled_rsa
from wsstar.star.rendezvous import Settings

ATTACKER = "127.0.0.2"
#: The server's default --max-message-size, and one byte more.
MESSAGE_LIMIT = 4 * 1024 * 1024
OVER_LIMIT = MESSAGE_LIMIT + 1
CHUNK = 64 * 1024


def attacker(i: int) -> str:
    """The i-th attacker's loopback address (127.0.0.2 to 127.0.0.201)."""
    return f"127.0.0.{2 + i % 200}"


async def _exchange(port: int, request: bytes, local: str = ATTACKER) -> bytes:
    """Send ``request`` on a new connection, then the status line back; the
    connection is dropped without reading further."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), TIMEOUT)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _polling_session(http: aiohttp.ClientSession, port: int, eio: int) -> str:
    url = f"http://127.0.0.1:{port}/socket.io/?EIO={eio}&transport=polling"
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as resp:
        body = await resp.text()
    start = body.index("{")
    sid: str = json.loads(body[start : body.index("}", start) + 1])["sid"]
    return sid


def _post(port: int, sid: str, eio: int, length: int, body: bytes = b"") -> bytes:
    return (
        f"POST /socket.io/?EIO={eio}&transport=polling&sid={sid} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode() + body


async def _lanes(count: int, lanes: int, work: Callable[[int], Awaitable[None]]) -> None:
    numbers = iter(range(count))

    async def lane() -> None:
        for i in numbers:
            await work(i)

    await asyncio.gather(*(lane() for _ in range(lanes)))


async def failed_posts(port: int, size: int) -> str:
    """Point 1: long-polling POSTs python-engineio refuses, each on a session
    of its own.  Every one must be answered at once, and nothing kept."""
    statuses: dict[str, int] = {}

    async def lane(number: int) -> None:
        # A source address per lane, so that tens of thousands of requests do
        # not run one address out of ephemeral ports.
        local = attacker(number)
        connector = aiohttp.TCPConnector(local_addr=(local, 0))
        async with aiohttp.ClientSession(connector=connector) as http:
            for i in numbers:
                kind = i % 20
                eio = 4 if kind == 2 else 3
                sid = await _polling_session(http, port, eio)
                if kind == 0:  # an over-limit body, sent whole
                    request = _post(port, sid, 3, OVER_LIMIT, b"x" * OVER_LIMIT)
                elif kind == 1:  # not a v3 payload
                    request = _post(port, sid, 3, 8, b"garbage!")
                elif kind == 2:  # a PING, which only a v3 client may send
                    request = _post(port, sid, 4, 1, b"2")
                else:  # over the limit by its headers, then the client is gone
                    request = _post(port, sid, 3, OVER_LIMIT)
                status = (await _exchange(port, request, local)).decode().strip()
                statuses[status] = statuses.get(status, 0) + 1

    numbers = iter(range(size))
    await asyncio.gather(*(lane(n) for n in range(16)))
    refused = sum(n for s, n in statuses.items() if s.split()[1:2] in (["400"], ["413"]))
    assert refused == size, statuses
    return f"{size} failed POSTs, each answered at once: {statuses}"


async def unaccepted_relay(port: int, size: int) -> str:
    """Point 2: one connection dials its own address ``size`` times, answers
    every ``ss-incomming`` but never accepts the streams, and writes into all
    of them.  What it writes is held for nobody: it must be bounded and
    dropped."""
    client, addr = await joined(port, ATTACKER)
    try:

        async def answer() -> None:
            while True:
                _, (dial_id, *_) = await client.next_event("ss-incomming", timeout=3600)
                await client.send_raw(f"43{client.incoming[dial_id]}[]")

        answering = asyncio.ensure_future(answer())
        try:
            replies = await asyncio.gather(
                *(client.call("ss-dial", addr, addr, f"u{i}") for i in range(size))
            )
        finally:
            answering.cancel()
        opened = [f"u{i}" for i, reply in enumerate(replies) if reply == []]
        refused = {reply[0] for reply in replies if reply != []}
        written = 0
        # 8 MiB into each stream, or as much as the server reads in 5 s: it
        # may drop what nobody accepted past its bound, or stop reading.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                for _ in range(128):
                    for dial_id in opened:
                        await client.emit(
                            f"socket.io-pull-stream.queue.{dial_id}.dialer", b"\0" * CHUNK
                        )
                        written += CHUNK
    finally:
        await client.close()
    # All asked at once, so no more than may wait at once can have opened.
    rules = Settings()
    cap = min(rules.max_pending_dials_per_socket, rules.max_pending_dials_per_listener)
    assert len(opened) <= cap, f"{len(opened)} dials opened at once"
    return (
        f"{len(opened)} dials opened, {size - len(opened)} refused {sorted(refused)}; "
        f"{written / 2**20:.0f} MiB written into unaccepted streams"
    )


async def slowloris(port: int, size: int) -> str:
    """Point 3: ``size`` connections each sending half a request and holding
    it.  The header deadline must close every one of them."""
    held = []
    for i in range(size):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=(attacker(i), 0)
        )
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        held.append((reader, writer))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        # Each read ends only when the server closes (after a 408, or
        # nothing); one still open after 30 s fails the attack's check.
        async with asyncio.timeout(30):
            for reader, _ in held:
                with contextlib.suppress(ConnectionError):
                    await reader.read()
    finally:
        for _, writer in held:
            writer.close()
    return (
        f"{size} half-sent requests, all closed by the server within {loop.time() - started:.1f} s"
    )


async def unread_replies(port: int, size: int) -> str:
    """Point 4: a websocket that stops reading and sends ``size`` thousand
    tiny requests, each answered; and a v3 polling session that never polls
    and POSTs payloads of PINGs.  Both must be cut off, not queued for."""
    client = await Eio3Client.connect(port, keepalive=False, local=ATTACKER)
    try:
        client.reading.clear()
        sent = 0
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(30):
                for i in range(size * 1000):
                    if client.closed.is_set() or client.ws.closed:
                        break
                    await client.send_raw(f'42{i}["x"]')
                    sent += 1
        client.reading.set()
        await asyncio.wait_for(client.closed.wait(), TIMEOUT)
    finally:
        await client.close()
    pings = b"1:2" * 68_000  # 200 KB of PINGs in one v3 payload
    statuses: dict[str, int] = {}
    connector = aiohttp.TCPConnector(local_addr=(ATTACKER, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        sid = await _polling_session(http, port, 3)
    for _ in range(max(1, size // 25)):
        status = (await _exchange(port, _post(port, sid, 3, len(pings), pings))).decode()
        statuses[status.strip()] = statuses.get(status.strip(), 0) + 1
    assert all(s.split()[1] == "400" for s in statuses), statuses
    return (
        f"a reader that stopped was disconnected after {sent} requests; "
        f"PING payloads answered {statuses}"
    )


def _expensive_rsa_key() -> tuple[bytes, str]:
    """A marshalled 3072-bit RSA key with a 65-bit exponent (costly to verify
    with), and its peer id: only the public half is needed to be refused."""
    modulus = rsa.generate_private_key(65537, 3072).public_key().public_numbers().n
    return marshalled_rsa(rsa.RSAPublicNumbers((1 << 64) + 1, modulus).public_key())


async def expensive_keys(port: int, size: int) -> str:
    """Point 5: joins with an RSA key costly to verify with, from 40
    addresses.  Each must be refused before any signature is checked."""
    marshalled, peer_id = _expensive_rsa_key()
    address = f"/ip4/127.0.0.1/tcp/{port}/ws/p2p-websocket-star/ipfs/{peer_id}"
    clients = await asyncio.gather(
        *(Eio3Client.connect(port, local=attacker(i)) for i in range(40))
    )
    replies: dict[str, int] = {}
    try:

        async def one(i: int) -> None:
            reply = await clients[i % 40].call("ss-join", address, marshalled.hex())
            replies[str(reply[0])] = replies.get(str(reply[0]), 0) + 1

        await _lanes(size, 40, one)
    finally:
        for client in clients:
            await client.close()
    assert replies == {"Invalid public key: an RSA key must have the public exponent 65537": size}
    return f"{size} joins with a costly RSA key, all refused: {replies}"


async def stalled_receivers(port: int, size: int) -> str:
    """Point 6: ``size`` receivers that stop reading while their senders write
    32 MiB each.  Senders are paused, then the streams cut after the stall
    timeout."""
    pairs = []
    for i in range(size):
        a, addr_a = await joined(port, attacker(i))
        b, addr_b = await joined(port, attacker(i))
        b.collect_chunks = True
        dial = asyncio.ensure_future(a.call("ss-dial", addr_a, addr_b, "s"))
        await b.next_event("ss-incomming")
        await b.accept_dial("s")
        assert await asyncio.wait_for(dial, TIMEOUT) == []
        await a.emit("socket.io-pull-stream.accept.s.listener")
        b.reading.clear()
        pairs.append((a, b))
    try:

        async def blast(a: Eio3Client) -> None:
            for _ in range(512):
                await a.emit("socket.io-pull-stream.queue.s.dialer", b"\0" * CHUNK)

        blasts = [asyncio.ensure_future(blast(a)) for a, _ in pairs]
        cut = 0
        for a, _ in pairs:
            event = await a.next_event("socket.io-pull-stream.error.s.listener", timeout=60)
            cut += event[1] == ["Relay buffer limit exceeded"]
        for task in blasts:
            task.cancel()
    finally:
        for a, b in pairs:
            await a.close()
            await b.close()
    assert cut == size
    return f"{size} stalled receivers, each cut after the stall timeout"


async def dial_storm(port: int, size: int) -> str:
    """Point 7: ``size`` dials at once toward a listener that never answers.
    At most 64 may wait for it; the rest are refused at once."""
    victim, victim_addr = await joined(port, ATTACKER)
    dialers = [await joined(port, attacker(i + 1)) for i in range(max(1, size // 16))]
    replies: dict[str, int] = {}
    try:

        async def one(i: int) -> None:
            client, addr = dialers[i % len(dialers)]
            reply = await client.call("ss-dial", addr, victim_addr, f"d{i}", timeout=60)
            replies[str(reply[0])] = replies.get(str(reply[0]), 0) + 1

        await asyncio.gather(*(one(i) for i in range(size)))
        asked = 0
        while not victim.events.empty():
            asked += victim.events.get_nowait()[0] == "ss-incomming"
    finally:
        for client, _ in dialers:
            await client.close()
        await victim.close()
    assert asked <= 64, asked
    assert replies.get("Too many dials waiting for this peer", 0) >= size - 64, replies
    return f"{size} dials at one listener: it was asked {asked} times; {replies}"


async def slow_bodies(port: int, size: int) -> str:
    """Point 8: valid v3 payloads of 16 large packets, sent in slow pieces.
    Each must be read whole: 200, and the session goes on."""
    packets = [f"42{i}" + json.dumps(["no-such-event", "x" * 30_000]) for i in range(16)]
    body = "".join(f"{len(p)}:{p}" for p in packets).encode()
    connector = aiohttp.TCPConnector(local_addr=(ATTACKER, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(size):
            sid = await _polling_session(http, port, 3)
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(ATTACKER, 0)
            )
            try:
                writer.write(_post(port, sid, 3, len(body)))
                for i in range(0, len(body), 60_000):
                    writer.write(body[i : i + 60_000])
                    await writer.drain()
                    await asyncio.sleep(0.05)
                status = await asyncio.wait_for(reader.readline(), TIMEOUT)
                assert status.startswith(b"HTTP/1.1 200"), status
            finally:
                writer.close()
            url = f"http://127.0.0.1:{port}/socket.io/?EIO=3&transport=polling&sid={sid}"
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as resp:
                assert resp.status == 200
                # Answers to all sixteen, so every packet was read.
                assert (await resp.text()).count("Unknown event") == 16
    return f"{size} payloads of {len(body)} bytes sent slowly, each read whole"


async def log_forgery(port: int, size: int) -> str:
    """Point 9: client text with line breaks, and 50 connections sending
    refused joins as fast as they can.  Nothing forges a line and the
    refusals are aggregated."""
    clients = await asyncio.gather(
        *(Eio3Client.connect(port, local=attacker(i)) for i in range(50))
    )
    try:
        forged = "/ip4/1.2.3.4/tcp/1\n2026-01-01 joined /x from 6.6.6.6"
        await clients[0].call("ss-dial", forged, forged, "f\nforged")

        async def flood(client: Eio3Client) -> None:
            for i in range(size):
                await client.call("ss-join", f"/ip4/1.2.3.4/tcp/{i}\nforged", "")

        await asyncio.gather(*(flood(c) for c in clients))
    finally:
        for client in clients:
            await client.close()
    return f"{50 * size} refused joins and a forged dial sent"


async def dial_id_collision(port: int, size: int) -> str:
    """Point 10: a second dialer reuses a dial id active at the listener."""
    (a, addr_a), (b, addr_b) = await joined(port, ATTACKER), await joined(port, ATTACKER)
    mallory, addr_m = await joined(port, attacker(1))
    try:
        dial = asyncio.ensure_future(a.call("ss-dial", addr_a, addr_b, "same"))
        await b.next_event("ss-incomming")
        await b.accept_dial("same")
        assert await asyncio.wait_for(dial, TIMEOUT) == []
        replies = [await mallory.call("ss-dial", addr_m, addr_b, "same") for _ in range(size)]
    finally:
        for client in (a, b, mallory):
            await client.close()
    assert replies == [["Dial id already in use"]] * size, replies
    return f"{size} dials reusing an active dial id, all refused"


async def spellings(port: int, size: int) -> str:
    """Point 11: one key joins many spellings of its address; and addresses
    with control characters or white space."""
    client = await Eio3Client.connect(port, local=ATTACKER)
    ident = Identity.generate()
    good = ident.address(port)
    same_peer = [
        good,
        good.replace("/ipfs/", "/p2p/"),
        good + "/",
        good.replace("/ws/", "//ws/"),
    ]
    refused = [good + " ", good + "\x1f", good.replace("/tcp/", "/tcp\n/")]
    try:
        for _ in range(size):
            for addr in same_peer:
                _, nonce = await client.call("ss-join", addr, ident.marshalled_public_key.hex())
                reply = await client.call("ss-join", addr, ident.sign_hex(nonce))
                assert reply[:2] == [None, None], reply
            for addr in refused:
                reply = await client.call("ss-join", addr, ident.marshalled_public_key.hex())
                assert reply[0] is not None, (addr, reply)
    finally:
        await client.close()
    return f"{size} rounds of {len(same_peer)} spellings joined as one peer, {len(refused)} refused"


@dataclasses.dataclass(frozen=True)
class Attack:
    run: Callable[[int, int], Awaitable[str]]
    #: Server flags the attack is run against (beyond the defaults).
    flags: tuple[str, ...] = ()
    #: The size a live test runs; the bench uses its own.
    test_size: int = 1


ATTACKS: dict[str, Attack] = {
    "failed-posts": Attack(failed_posts, test_size=200),
    "unaccepted-relay": Attack(unaccepted_relay, ("--dial-timeout", "3"), test_size=300),
    "slowloris": Attack(slowloris, test_size=500),
    "unread-replies": Attack(unread_replies, test_size=200),
    "expensive-keys": Attack(expensive_keys, test_size=400),
    "stalled-receivers": Attack(stalled_receivers, ("--relay-stall-timeout", "2"), test_size=4),
    "dial-storm": Attack(dial_storm, test_size=400),
    "slow-bodies": Attack(slow_bodies, test_size=3),
    "log-forgery": Attack(log_forgery, test_size=40),
    "dial-id-collision": Attack(dial_id_collision, test_size=5),
    "spellings": Attack(spellings, test_size=2),
}
