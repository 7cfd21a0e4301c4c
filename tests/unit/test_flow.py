"""Relay flow control's bookkeeping, without sockets."""

from __future__ import annotations

from wsstar.directory import LOCAL_NODE, Owner, SocketId
from wsstar.star.flow import GLOBAL, FlowControl, Held

A, B = Owner(LOCAL_NODE, SocketId("a")), Owner(LOCAL_NODE, SocketId("b"))
SINK = Owner(LOCAL_NODE, SocketId("sink"))
OTHER = Owner(LOCAL_NODE, SocketId("other"))


def test_a_source_is_read_again_only_when_every_gate_holding_it_opens() -> None:
    flow = FlowControl(stall_timeout=30)
    assert flow.hold(A, SINK) is True  # newly held: pause it
    assert flow.hold(A, OTHER) is False  # already paused
    assert flow.hold(B, SINK) is True
    assert sorted(flow.open(SINK)) == [B]
    assert len(flow) == 1  # A, still held by OTHER
    assert flow.open(OTHER) == [A]
    assert len(flow) == 0 and not flow.holds(SINK)


def test_held_and_global_gates() -> None:
    flow = FlowControl(stall_timeout=30)
    flow.hold(A, Held(A))
    flow.hold(A, GLOBAL)
    assert flow.held_gates() == [Held(A)]
    assert flow.open(Held(A)) == []
    assert flow.open(GLOBAL) == [A]


def test_a_full_receiver_that_takes_nothing_stalls_one_that_takes_a_little_does_not() -> None:
    flow = FlowControl(stall_timeout=10)
    flow.hold(A, SINK, now=0.0, progress=100)
    flow.hold(B, OTHER, now=0.0, progress=0)
    assert flow.stalled(5.0, {SINK: 100, OTHER: 10}) == []
    assert flow.stalled(12.0, {SINK: 100, OTHER: 20}) == [SINK]
    # A receiver that is gone counts as stalled.
    assert flow.stalled(12.0, {SINK: 100}) == [SINK, OTHER]


def test_a_departed_source_leaves_nothing_behind() -> None:
    flow = FlowControl(stall_timeout=10)
    flow.hold(A, SINK)
    flow.hold(A, Held(A))
    flow.forget(A)
    assert len(flow) == 0 and not flow.holds(SINK) and flow.watched() == []
