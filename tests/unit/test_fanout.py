"""Announcement batching, with stand-in sessions instead of sockets."""

from __future__ import annotations

import asyncio
import json
from typing import cast

import pytest

from tests.support.wait import eventually
from wsstar.directory import LOCAL_NODE, NodeId, Owner, SocketId
from wsstar.directory.memory import MemoryDirectory
from wsstar.server.engineio import Session, text_frame
from wsstar.server.fanout import (
    DELAY_PER_PEER,
    MAX_BUFFERED_BYTES,
    MAX_QUEUED_PACKETS,
    AnnouncementFanout,
)
from wsstar.star.announce import AnnouncementBudget
from wsstar.star.effects import Announce
from wsstar.star.rendezvous import Rendezvous, Settings
from wsstar.wire.requests import JoinRequest, LeaveRequest


class FakeSession:
    """What the fan-out uses of a session."""

    def __init__(self, websocket: bool = True) -> None:
        self.websocket = websocket
        self.written: list[bytes] = []
        self.queued: list[str] = []
        self.packets = 0
        self.buffered = 0

    def write_frames(self, frames: list[bytes]) -> bool:
        if self.websocket:
            self.written.append(b"".join(frames))
        return self.websocket

    def buffered_bytes(self) -> int:
        return self.buffered

    def queued_packets(self) -> int:
        return self.packets

    def send_texts(self, texts: list[str]) -> None:
        self.queued.extend(texts)


def o(sid: str) -> Owner:
    return Owner(LOCAL_NODE, SocketId(sid))


def encode(address: str) -> str:
    return "2" + json.dumps(["ws-peer", address], separators=(",", ":"))


def frame(address: str) -> bytes:
    return text_frame("4" + encode(address))


def setup(
    *sids: str, budget: AnnouncementBudget | None = None, **sessions: FakeSession
) -> tuple[Rendezvous, AnnouncementFanout]:
    core = Rendezvous(
        MemoryDirectory(),
        Settings(crypto_challenge=False, strict_multiaddr=False),
        announce_interval=10.0,
        clock=lambda: 0.0,
    )
    for sid in sids:
        core.connect(SocketId(sid))
        core.join(SocketId(sid), JoinRequest(f"/{sid}", ""))
        sessions.setdefault(sid, FakeSession())
    fanout = AnnouncementFanout(
        core.directory, lambda sid: cast(Session, sessions.get(sid)), budget, clock=lambda: 0.0
    )
    return core, fanout


async def test_one_write_per_socket_with_every_announcement_but_its_own() -> None:
    a, b, c = FakeSession(), FakeSession(), FakeSession()
    _, fanout = setup("a", "b", "c", a=a, b=b, c=c)
    fanout.add(Announce("/a", o("a")))
    fanout.add(Announce("/b", o("b")))
    fanout.flush(rounds=True)
    assert a.written == [frame("/b")]
    assert b.written == [frame("/a")]
    assert c.written == [frame("/a") + frame("/b")]


async def test_gathered_announcements_go_out_after_a_short_delay() -> None:
    a, b = FakeSession(), FakeSession()
    _, fanout = setup("a", "b", a=a, b=b)
    fanout.add(Announce("/b", o("b"), join=True))
    fanout.add(Announce("/b", o("b"), join=True))  # twice before the flush: sent once
    assert a.written == []
    await eventually(lambda: bool(a.written), timeout=1.0, what="the batch to go out")
    assert a.written == [frame("/b")]
    assert b.written == []


async def test_the_gathering_wait_follows_the_whole_swarm_not_this_node_s_sockets() -> None:
    """Two nodes of one swarm each flush as often as one server would: the
    wait is set by every node's peers, not by this node's share of them."""
    a = FakeSession()
    core, fanout = setup("a", a=a)
    other = NodeId("other")
    for i in range(5000):
        core.directory.claim(f"/remote{i}", Owner(other, SocketId(f"r{i}")))
    loop = asyncio.get_running_loop()
    fanout.add(Announce("/remote0", None, join=True))
    assert fanout._timer is not None
    assert fanout._timer.when() - loop.time() == pytest.approx(DELAY_PER_PEER * 5001, abs=0.01)
    fanout.close()


async def test_a_session_that_cannot_take_frames_gets_queued_packets() -> None:
    a, polling = FakeSession(), FakeSession(websocket=False)
    _, fanout = setup("a", "p", a=a, p=polling)
    fanout.add(Announce("/a", o("a")))
    fanout.flush(rounds=True)
    assert polling.queued == [encode("/a")]


async def test_clients_far_behind_are_skipped() -> None:
    a, slow, full = FakeSession(), FakeSession(), FakeSession()
    slow.buffered = MAX_BUFFERED_BYTES + 1
    full.packets = MAX_QUEUED_PACKETS
    _, fanout = setup("a", "s", "f", a=a, s=slow, f=full)
    fanout.add(Announce("/a", o("a")))
    fanout.flush(rounds=True)
    assert slow.written == [] and full.written == [] and full.queued == []
    assert fanout.skipped == 2


async def test_an_address_gone_before_the_flush_is_not_announced() -> None:
    a, b = FakeSession(), FakeSession()
    core, fanout = setup("a", "b", a=a, b=b)
    fanout.add(Announce("/b", o("b")))
    core.leave(SocketId("b"), LeaveRequest("/b"))
    fanout.flush(rounds=True)
    assert a.written == []


async def test_a_socket_that_joined_before_the_flush_hears_it_too() -> None:
    a, b = FakeSession(), FakeSession()
    core, fanout = setup("a", a=a, b=b)
    fanout.add(Announce("/a", None))
    core.connect(SocketId("b"))
    core.join(SocketId("b"), JoinRequest("/b", ""))
    fanout.flush(rounds=True)
    assert b.written == [frame("/a")]
    assert a.written == [frame("/a")]


async def test_a_burst_of_joins_reaches_each_socket_within_its_budget_newest_first() -> None:
    a, b, c = FakeSession(), FakeSession(), FakeSession()
    _, fanout = setup("a", "b", "c", budget=AnnouncementBudget(1, 10.0), a=a, b=b, c=c)
    fanout.add(Announce("/a", o("a"), join=True))
    fanout.add(Announce("/b", o("b"), join=True))
    fanout.flush()
    assert a.written == [frame("/b")]
    assert b.written == [frame("/a")]
    assert c.written == [frame("/b")]  # /a is left to the rounds
    assert fanout.deferred == 1


async def test_a_rounds_share_goes_out_whatever_is_left_of_the_budget() -> None:
    a, b, c = FakeSession(), FakeSession(), FakeSession()
    _, fanout = setup("a", "b", "c", budget=AnnouncementBudget(1, 10.0), a=a, b=b, c=c)
    fanout.add(Announce("/a", o("a"), join=True))
    fanout.add(Announce("/b", o("b"), join=True))
    fanout.add(Announce("/c", o("c")))
    fanout.flush(rounds=True)
    assert a.written == [frame("/b") + frame("/c")]
    assert c.written == [frame("/b")]
    fanout.add(Announce("/a", o("a"), join=True))
    fanout.add(Announce("/a", o("a")))  # its round too: still the join's
    fanout.flush(rounds=True)
    assert c.written == [frame("/b")]  # the budget is spent for now
    assert fanout.deferred == 3


async def test_the_rounds_share_waits_for_the_tickers_flush() -> None:
    a, b = FakeSession(), FakeSession()
    _, fanout = setup("a", "b", a=a, b=b)
    fanout.add(Announce("/b", o("b")))
    fanout.add(Announce("/a", o("a"), join=True))
    fanout.flush()
    assert a.written == [] and b.written == [frame("/a")]
    fanout.flush(rounds=True)
    assert a.written == [frame("/b")]


async def test_joins_heard_take_the_place_of_the_rounds_share_for_one_period() -> None:
    sessions = {sid: FakeSession() for sid in ("l", "j1", "j2", "j3")}
    # 20 per 10 s: 2 a second, 3 a period with the one to spare.
    budget = AnnouncementBudget(20, 10.0)
    assert budget.per_period == 3
    _, fanout = setup(*sessions, budget=budget, **sessions)
    for sid in ("j1", "j2", "j3"):
        fanout.add(Announce(f"/{sid}", o(sid), join=True))
    fanout.flush()
    assert sessions["l"].written == [frame("/j1") + frame("/j2") + frame("/j3")]

    def rounds() -> None:
        for sid in sessions:
            fanout.add(Announce(f"/{sid}", o(sid)))
        fanout.flush(rounds=True)

    for session in sessions.values():
        session.written.clear()
    rounds()
    assert sessions["l"].written == []  # it heard three joins: news enough
    assert sessions["j1"].written == [frame("/l")]  # two joins, one repeat
    assert fanout.deferred == 3 + 3 * 2  # l's three repeats, two of each joiner's
    for session in sessions.values():
        session.written.clear()
    rounds()  # a new period: every socket its whole share
    assert sessions["l"].written == [frame("/j1") + frame("/j2") + frame("/j3")]
    assert sessions["j1"].written == [frame("/l") + frame("/j2") + frame("/j3")]


async def test_a_held_socket_hears_nothing_until_its_replay() -> None:
    sessions = {sid: FakeSession() for sid in ("old", "new", "j1", "j2")}
    core, _ = setup(*sessions, **sessions)
    now = [0.0]
    fanout = AnnouncementFanout(
        core.directory,
        lambda sid: cast(Session, sessions.get(sid)),
        AnnouncementBudget(100, 10.0),
        clock=lambda: now[0],
    )
    fanout.hold(SocketId("new"), 0.75)
    for sid in ("j1", "j2"):
        fanout.add(Announce(f"/{sid}", o(sid), join=True))
    fanout.add(Announce("/old", o("old")))
    fanout.flush(rounds=True)
    assert sessions["new"].written == []
    assert sessions["old"].written == [frame("/j1") + frame("/j2")]
    assert fanout.deferred == 3
    # Its replay is the first it hears, from its whole budget; then as anyone.
    now[0] = 0.8
    fanout.replay(SocketId("new"), cast(Session, sessions["new"]), ("/j2", "/j1", "/old"))
    assert sessions["new"].written == [frame("/j2") + frame("/j1") + frame("/old")]
    now[0] = 2.0
    fanout.add(Announce("/j1", o("j1"), join=True))
    fanout.flush()
    assert sessions["new"].written[1:] == [frame("/j1")]
