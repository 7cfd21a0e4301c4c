"""The cluster replica's rules, without Redis: which racing claim wins, what
goes to the outbox, and what a resynchronisation repairs."""

from __future__ import annotations

import pytest

from wsstar.cluster.messages import (
    BadMessage,
    Claimed,
    NodeDown,
    Released,
    decode,
    decode_entry,
    encode,
)
from wsstar.cluster.redis_bus import redacted
from wsstar.cluster.replica import ClusterDirectory, Publish
from wsstar.directory import NodeId, Owner, SocketId

HERE, THERE = NodeId("here"), NodeId("there")
MINE = Owner(HERE, SocketId("s1"))
MINE_TOO = Owner(HERE, SocketId("s2"))
THEIRS = Owner(THERE, SocketId("t1"))
A, B, C = "/a", "/b", "/c"


def replica() -> tuple[ClusterDirectory, list[int]]:
    directory = ClusterDirectory(HERE)
    woken: list[int] = []
    directory.notify = lambda: woken.append(1)
    return directory, woken


def test_local_changes_go_to_the_outbox_in_order() -> None:
    directory, woken = replica()
    directory.claim(A, MINE)
    assert directory.release(A, MINE)
    assert not directory.release(A, MINE)
    assert list(directory.outbox) == [Publish("claim", A, MINE), Publish("release", A, MINE)]
    assert len(woken) == 2


def test_remote_claims_join_the_view_once_and_stale_ones_are_ignored() -> None:
    directory, _ = replica()
    change = directory.apply(Claimed(A, THEIRS, 3))
    assert change.joined == [A]
    assert directory.owner(A) == THEIRS
    assert not directory.apply(Claimed(A, THEIRS, 3))
    assert not directory.apply(Claimed(A, Owner(THERE, SocketId("t0")), 2))
    assert directory.owner(A) == THEIRS
    assert not directory.outbox  # nothing of another node's is published here


def test_a_claim_on_its_way_beats_any_remote_claim_seen_before_its_echo() -> None:
    directory, _ = replica()
    directory.claim(A, MINE)
    # Seen before our own claim's echo: it ran before ours.
    assert not directory.apply(Claimed(A, THEIRS, 7))
    assert directory.owner(A) == MINE
    assert not directory.apply(Claimed(A, MINE, 8))  # the echo
    # A later claim elsewhere wins: the last join, as Redis ordered them.
    change = directory.apply(Claimed(A, THEIRS, 9))
    assert change.joined == [A]
    assert directory.owner(A) == THEIRS
    assert list(directory.owned_by(MINE)) == []


def test_a_release_drops_only_what_its_owner_still_holds() -> None:
    directory, _ = replica()
    directory.apply(Claimed(A, THEIRS, 1))
    directory.apply(Claimed(A, Owner(THERE, SocketId("t2")), 2))
    assert not directory.apply(Released(A, THEIRS, 1))
    assert directory.owner(A) == Owner(THERE, SocketId("t2"))
    assert directory.apply(Released(A, Owner(THERE, SocketId("t2")), 2)).left == [A]
    assert directory.owner(A) is None


def test_a_node_down_takes_all_it_owned() -> None:
    directory, _ = replica()
    directory.claim(C, MINE)
    directory.apply(Claimed(A, THEIRS, 1))
    directory.apply(Claimed(B, Owner(THERE, SocketId("t2")), 2))
    change = directory.apply(NodeDown(THERE))
    assert sorted(change.left) == [A, B]
    assert list(directory.addresses()) == [C]
    assert directory.remote_nodes() == set()


def test_declared_dead_while_alive_the_node_claims_its_addresses_again() -> None:
    directory, _ = replica()
    directory.claim(A, MINE)
    directory.outbox.clear()
    assert not directory.apply(NodeDown(HERE))
    assert list(directory.outbox) == [Publish("claim", A, MINE)]
    assert directory.owner(A) == MINE


def test_a_resync_repairs_the_view_and_redis() -> None:
    directory, _ = replica()
    directory.apply(Claimed(A, THEIRS, 1))  # gone from Redis while we were away
    directory.apply(Claimed(B, THEIRS, 2))
    directory.claim(C, MINE_TOO)  # made while Redis was away
    directory.outbox.clear()
    directory.begin_resync()
    # Released after the snapshot was read: the snapshot must not revive it.
    assert directory.apply(Released(B, THEIRS, 2)).left == [B]
    change = directory.end_resync(
        [
            Claimed(B, THEIRS, 2),
            Claimed("/d", THEIRS, 5),
            Claimed("/e", MINE, 4),  # ours in Redis, released here meanwhile
        ]
    )
    assert change.left == [A]
    assert change.joined == ["/d"]
    assert sorted(directory.addresses()) == [C, "/d"]
    assert list(directory.outbox) == [
        Publish("release", "/e", MINE),
        Publish("claim", C, MINE_TOO),
    ]


def test_a_claim_seen_during_the_resync_survives_a_snapshot_that_lacks_it() -> None:
    directory, _ = replica()
    directory.begin_resync()
    directory.apply(Claimed(A, THEIRS, 9))
    directory.end_resync([])
    assert directory.owner(A) == THEIRS


@pytest.mark.parametrize(
    "message",
    [Claimed("/x", THEIRS, 12), Released("/x", MINE, 3), NodeDown(THERE)],
)
def test_messages_round_trip(message: Claimed | Released | NodeDown) -> None:
    assert decode(encode(message)) == message


def test_what_the_scripts_write_is_read() -> None:
    # cjson escapes slashes; the decoder must not care.
    raw = '["claim","\\/ip4\\/1.2.3.4","n1","s1",42]'
    assert decode(raw) == Claimed("/ip4/1.2.3.4", Owner(NodeId("n1"), SocketId("s1")), 42)
    assert decode_entry("/x", '["n1","s1",7]') == Claimed(
        "/x", Owner(NodeId("n1"), SocketId("s1")), 7
    )


@pytest.mark.parametrize("raw", ["", "{}", '["claim","/x","n"]', '["what"]', "[1,2,3,4,5]"])
def test_foreign_messages_are_refused(raw: str) -> None:
    with pytest.raises(BadMessage):
        decode(raw)


def test_logged_redis_urls_hide_the_password() -> None:
    assert redacted("redis://:s3cret@db:6379/0") == "redis://:***@db:6379/0"
    assert redacted("rediss://user:s3cret@db/1") == "rediss://user:***@db/1"
    assert redacted("redis://db:6379/0") == "redis://db:6379/0"
