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
    admission = Admission(
        Limits(max_connections=3, max_connections_per_ip=2, limit_loopback=True), Clock()
    )
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
    limits = Limits(
        joins_per_ip_per_second=1.0, dials_per_ip_per_second=0, max_connections_per_ip=1
    )
    admission = Admission(limits, clock)
    admission.connect("a")
    assert [admission.allow("a", "joins") for _ in range(5)] == [True] * 4 + [False]
    assert admission.allow("b", "joins")  # another address has its own bucket
    assert all(admission.allow("a", "dials") for _ in range(1000))  # 0 = no limit
    clock.now += 1.0
    assert admission.allow("a", "joins")
    assert admission.refused["joins"] == 1


def test_reconnecting_does_not_reset_a_rate_limit_but_idle_state_is_swept() -> None:
    clock = Clock()
    admission = Admission(Limits(joins_per_ip_per_second=1.0, max_connections_per_ip=1), clock)
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


def test_the_join_burst_covers_a_challenge_join_for_every_connection_an_address_may_hold() -> None:
    # 256 browsers behind one NAT, all rejoining at once after a restart.
    admission = Admission(Limits(), Clock())
    assert all(admission.allow("198.51.100.7", "joins") for _ in range(2 * 256))
    assert not admission.allow("198.51.100.7", "joins")  # then held to the rate


def test_loopback_clients_are_exempt_from_per_address_limits_unless_asked() -> None:
    limits = Limits(max_connections=0, max_connections_per_ip=1, joins_per_ip_per_second=1.0)
    admission = Admission(limits, Clock())
    for ip in ("127.0.0.1", "127.0.3.4", "::1", "::ffff:127.0.0.1"):
        assert admission.connect(ip) is None and admission.connect(ip) is None
        assert all(admission.allow(ip, "joins") for _ in range(100))
    assert admission.connect("192.0.2.1") is None
    assert admission.connect("192.0.2.1") == "connections_per_ip"
    strict = Admission(Limits(max_connections_per_ip=1, limit_loopback=True), Clock())
    assert strict.connect("127.0.0.1") is None
    assert strict.connect("127.0.0.1") == "connections_per_ip"
