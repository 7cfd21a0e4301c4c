import random

from wsstar.directory import LOCAL_NODE, NodeId, Owner, SocketId
from wsstar.directory.memory import MemoryDirectory


def o(sid: str, node: str = LOCAL_NODE) -> Owner:
    return Owner(NodeId(node), SocketId(sid))


def test_last_claim_wins_and_release_needs_ownership() -> None:
    d = MemoryDirectory()
    assert d.claim("/a", o("s1")) is None
    assert d.claim("/a", o("s2")) == o("s1")
    assert d.owner("/a") == o("s2")
    assert set(d.owned_by(o("s1"))) == set()
    assert not d.release("/a", o("s1"))
    assert d.owner("/a") == o("s2")
    assert d.release("/a", o("s2"))
    assert d.owner("/a") is None
    assert len(d) == 0
    assert d.owner_count() == 0
    assert list(d.local_sockets()) == []


def test_release_all_drops_only_what_is_still_owned() -> None:
    d = MemoryDirectory()
    d.claim("/a", o("s1"))
    d.claim("/b", o("s1"))
    d.claim("/b", o("s2"))
    assert sorted(d.release_all(o("s1"))) == ["/a"]
    assert d.owner("/b") == o("s2")
    assert sorted(d.addresses()) == ["/b"]
    assert list(d.local_sockets()) == ["s2"]


def test_claiming_own_address_again_reports_no_previous_owner() -> None:
    d = MemoryDirectory()
    d.claim("/a", o("s1"))
    assert d.claim("/a", o("s1")) is None
    assert len(d) == 1


def test_swarm_queries_count_every_node_but_only_local_sockets_are_written_to() -> None:
    d = MemoryDirectory()
    d.claim("/a", o("s1"))
    d.claim("/b", o("s1", node="elsewhere"))
    assert d.owner_count() == 2
    assert sorted(d.addresses()) == ["/a", "/b"]
    assert list(d.local_sockets()) == ["s1"]
    # The same socket id on another node is another owner.
    assert d.release_all(o("s1", node="elsewhere")) == ["/b"]
    assert list(d.local_sockets()) == ["s1"]
    assert d.owner("/a") == o("s1")


def test_newest_first_and_a_takeover_counts_as_a_join() -> None:
    d = MemoryDirectory()
    for name in "abc":
        d.claim(f"/{name}", o(name))
    d.claim("/a", o("s2"))
    assert list(d.newest()) == ["/a", "/c", "/b"]


def test_a_sample_holds_distinct_joined_addresses_through_churn() -> None:
    d = MemoryDirectory()
    rng = random.Random(7)
    for i in range(100):
        d.claim(f"/{i}", o(str(i)))
    for i in range(0, 100, 3):
        d.release(f"/{i}", o(str(i)))
    joined = {f"/{i}" for i in range(100) if i % 3}
    for _ in range(20):
        chosen = d.sample(10, rng)
        assert len(chosen) == 10 and len(set(chosen)) == 10 and set(chosen) <= joined
    assert sorted(d.sample(1000, rng)) == sorted(joined)
