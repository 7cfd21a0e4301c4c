from __future__ import annotations

from wsstar.server.admission import Admission, Limits, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_bursts_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=4.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(5)] == [True, True, True, True, False]
    assert bucket.take(0.5)
    assert not bucket.take(0.5)
    assert not bucket.full(1.0)
    assert bucket.full(2.5)


def test_connection_caps_total_and_per_address() -> None:
    admission = Admission(Limits(max_connections=3, max_connections_per_ip=2), Clock())
    assert admission.connect("a") is None
    assert admission.connect("a") is None
    assert admission.connect("a") == "connections_per_ip"
    assert admission.connect("b") is None
    assert admission.connect("c") == "connections"
    admission.disconnect("a")
    assert admission.connect("c") is None
    assert admission.refused["connections"] == 1
    assert admission.refused["connections_per_ip"] == 1


def test_rate_limits_per_address_and_kind() -> None:
    clock = Clock()
    admission = Admission(Limits(joins_per_ip_per_second=1.0, dials_per_ip_per_second=0), clock)
    admission.connect("a")
    assert [admission.allow("a", "joins") for _ in range(5)] == [True] * 4 + [False]
    assert admission.allow("b", "joins")  # another address has its own bucket
    assert all(admission.allow("a", "dials") for _ in range(1000))  # 0 = no limit
    clock.now += 1.0
    assert admission.allow("a", "joins")
    assert admission.refused["joins"] == 1


def test_reconnecting_does_not_reset_a_rate_limit_but_idle_state_is_swept() -> None:
    clock = Clock()
    admission = Admission(Limits(joins_per_ip_per_second=1.0), clock)
    admission.connect("a")
    for _ in range(4):
        admission.allow("a", "joins")
    admission.disconnect("a")
    admission.connect("a")
    assert not admission.allow("a", "joins")
    admission.disconnect("a")
    clock.now += 10
    admission.sweep()
    assert admission._clients == {}
    assert admission.connections == 0
