"""The rendezvous rules, driven directly: no sockets, no event loop."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.identity import Identity, marshalled_rsa, sha256_peer_id
from wsstar.directory import LOCAL_NODE, Owner, SocketId
from wsstar.directory.memory import MemoryDirectory
from wsstar.star.effects import (
    Announce,
    AnswerDial,
    AskIncoming,
    AwaitReplay,
    DialKey,
    Effect,
    Emit,
    Replay,
)
from wsstar.star.rendezvous import LISTING_REUSE, Rendezvous, Settings, make_nonce, to_chunk
from wsstar.wire import codec
from wsstar.wire.reasons import Reason, Refusal
from wsstar.wire.replies import CONNECTED, Joined, ListenerError, join_ack, refusal_ack
from wsstar.wire.requests import DialRequest, JoinRequest, LeaveRequest

PORT = 9090


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock, **settings: object) -> Rendezvous:
    return Rendezvous(MemoryDirectory(), Settings(**settings), announce_interval=10.0, clock=clock)  # type: ignore[arg-type]


def o(sid: str) -> Owner:
    """How effects address a socket of this node."""
    return Owner(LOCAL_NODE, SocketId(sid))


def join_(
    r: Rendezvous, sid: str, address: str, data: str
) -> tuple[tuple[object, ...], list[Effect]]:
    """One ss-join; the reply as the ack arguments the client receives."""
    reply, effects = r.join(SocketId(sid), JoinRequest(address, data))
    return join_ack(reply), effects


def dial_(
    r: Rendezvous, sid: str, from_addr: str, to_addr: str, dial_id: str
) -> tuple[tuple[object, ...] | None, list[Effect]]:
    """One ss-dial; an immediate refusal as the ack arguments the client receives."""
    refusal, effects = r.dial(SocketId(sid), DialRequest(from_addr, to_addr, dial_id))
    return (refusal_ack(refusal) if refusal is not None else None), effects


def join(r: Rendezvous, sid: str, ident: Identity) -> tuple[object, ...]:
    """The real client's two-step join; returns the final reply."""
    addr = ident.address(PORT)
    (err, nonce), effects = join_(r, sid, addr, ident.marshalled_public_key.hex())
    assert err is None and isinstance(nonce, str) and effects == []
    reply, _ = join_(r, sid, addr, ident.sign_hex(nonce))
    return reply


def test_nonce_has_the_reference_shape() -> None:
    nonce = make_nonce()
    assert len(nonce) == 72
    assert nonce != make_nonce()


def test_challenge_join_and_peer_list(clock: Clock) -> None:
    r = make(clock)
    a, b = Identity.generate(), Identity.generate()
    r.connect("s1")
    r.connect("s2")
    assert join(r, "s1", a) == (None, None, [])
    addr_b = b.address(PORT)
    (_, nonce), _ = join_(r, "s2", addr_b, b.marshalled_public_key.hex())
    reply, effects = join_(r, "s2", addr_b, b.sign_hex(str(nonce)))
    assert reply == (None, None, [a.address(PORT)])
    # Announced to the others, never to the joiner itself.
    assert effects == [Announce(addr_b, skip=o("s2"), join=True)]
    assert r.stats.joins_success == 2 and r.stats.joins_total == 2


def test_error_strings_of_the_reference(clock: Clock) -> None:
    r = make(clock)
    r.connect("s")
    a = Identity.generate()
    addr = a.address(PORT)
    assert join_(r, "s", "/ip4/1.2.3.4/tcp/1/ws", "x")[0] == (Reason.INVALID_MULTIADDR.value,)
    assert join_(r, "s", addr, "")[0] == (Reason.NO_ID_PROVIDED.value,)
    (_, nonce), _ = join_(r, "s", addr, a.marshalled_public_key.hex())
    assert join_(r, "s", addr, "00" * 64)[0] == (Reason.SIGNATURE_INVALID.value,)
    (_, nonce), _ = join_(r, "s", addr, a.marshalled_public_key.hex())
    assert join_(r, "s", addr, "00")[0] == (Reason.CRYPTO_ERROR.value,)
    assert r.stats.joins_failure == 4 and r.stats.joins_success == 0


def test_clear_errors_where_the_reference_acks_an_empty_object(clock: Clock) -> None:
    r = make(clock)
    r.connect("s")
    a, b = Identity.generate(), Identity.generate()
    assert join_(r, "s", a.address(PORT), b.marshalled_public_key.hex())[0] == (
        Reason.ID_MISMATCH.value,
    )
    (reply,), _ = join_(r, "s", a.address(PORT), "08ff")
    assert str(reply).startswith(Reason.INVALID_PUBLIC_KEY.value)
    no_id = f"/ip4/127.0.0.1/tcp/{PORT}/ws/p2p-websocket-star"
    assert join_(r, "s", no_id, a.marshalled_public_key.hex())[0] == (
        Reason.NO_PEER_ID_IN_ADDRESS.value,
    )


def test_p2p_spelling_is_accepted(clock: Clock) -> None:
    r = make(clock)
    r.connect("s")
    a = Identity.generate()
    addr = a.address(PORT).replace("/ipfs/", "/p2p/")
    (_, nonce), _ = join_(r, "s", addr, a.marshalled_public_key.hex())
    assert join_(r, "s", addr, a.sign_hex(str(nonce)))[0] == (None, None, [])


def test_nonce_answers_one_attempt_only(clock: Clock) -> None:
    r = make(clock)
    r.connect("s")
    a = Identity.generate()
    addr = a.address(PORT)
    (_, nonce), _ = join_(r, "s", addr, a.marshalled_public_key.hex())
    signature = a.sign_hex(str(nonce))
    assert join_(r, "s", addr, signature)[0] == (None, None, [])
    # Replaying the signature starts a new challenge instead of joining again.
    (reply,), _ = join_(r, "s", addr, signature)
    assert str(reply).startswith(Reason.INVALID_PUBLIC_KEY.value)
    assert r.pending_challenges() == 0


def test_nonces_expire(clock: Clock) -> None:
    r = make(clock, challenge_lifetime=5.0)
    r.connect("s")
    a = Identity.generate()
    addr = a.address(PORT)
    (_, nonce), _ = join_(r, "s", addr, a.marshalled_public_key.hex())
    clock.now += 6
    assert join_(r, "s", addr, a.sign_hex(str(nonce)))[0] == (Reason.CHALLENGE_EXPIRED.value,)


def test_nonces_are_per_socket(clock: Clock) -> None:
    r = make(clock)
    r.connect("s1")
    r.connect("s2")
    a = Identity.generate()
    addr = a.address(PORT)
    (_, nonce), _ = join_(r, "s1", addr, a.marshalled_public_key.hex())
    # Another socket cannot answer s1's challenge: for s2 it is a fresh start.
    (reply,), _ = join_(r, "s2", addr, a.sign_hex(str(nonce)))
    assert str(reply).startswith(Reason.INVALID_PUBLIC_KEY.value)


def test_pending_challenges_are_bounded(clock: Clock) -> None:
    r = make(clock, max_pending_challenges=2, strict_multiaddr=False)
    r.connect("s")
    a = Identity.generate()
    key = a.marshalled_public_key.hex()
    for i in range(2):
        assert (
            join_(r, "s", f"/ip4/10.0.0.{i}/tcp/1/ws/p2p-websocket-star/ipfs/{a.peer_id}", key)[0][
                0
            ]
            is None
        )
    assert join_(r, "s", a.address(PORT), key)[0] == (Reason.TOO_MANY_CHALLENGES.value,)


def test_no_challenge_mode_and_last_join_wins(clock: Clock) -> None:
    r = make(clock, crypto_challenge=False, strict_multiaddr=False)
    for sid in ("old", "new", "other"):
        r.connect(sid)
    assert join_(r, "old", "/x", "")[0] == (None, None, [])
    assert join_(r, "other", "/y", "")[0] == (None, None, ["/x"])
    reply, effects = join_(r, "new", "/x", "")
    assert reply == (None, None, ["/y"])
    assert r.directory.owner("/x") == o("new")
    # The old socket lost ownership, so its disconnect leaves /x alone...
    r.disconnect("old")
    assert r.directory.owner("/x") == o("new")
    # ...but it could still have dialled from it, as in the reference.
    assert len(r.directory) == 2


def test_leave_only_by_owner_and_revokes_dial_rights(clock: Clock) -> None:
    r = make(clock, crypto_challenge=False, strict_multiaddr=False)
    r.connect("a")
    r.connect("b")
    join_(r, "a", "/a", "")
    join_(r, "b", "/b", "")
    r.leave("b", LeaveRequest("/a"))
    assert r.directory.owner("/a") == o("a")
    r.leave("a", LeaveRequest("/a"))
    assert r.directory.owner("/a") is None
    assert "/a" not in r.schedule._current
    assert dial_(r, "a", "/a", "/b", "d1")[0] == (Reason.NOT_AUTHORIZED.value,)


def test_announcements_go_to_every_other_socket_once_per_interval(clock: Clock) -> None:
    r = make(clock, crypto_challenge=False, strict_multiaddr=False)
    for sid in ("a", "b", "c"):
        r.connect(sid)
        join_(r, sid, f"/{sid}", "")
    clock.now += 10
    effects = [e for e in r.announcements_due(clock.now) if isinstance(e, Announce)]
    assert sorted(effects, key=str) == [
        Announce("/a", o("a")),
        Announce("/b", o("b")),
        Announce("/c", o("c")),
    ]
    assert r.announcements_due(clock.now + 1) == []
    r.disconnect("b")
    clock.now += 10
    effects = r.announcements_due(clock.now)
    assert sorted(effects, key=str) == [Announce("/a", o("a")), Announce("/c", o("c"))]


def test_a_socket_with_several_addresses_hears_of_each_of_them(clock: Clock) -> None:
    r = make(clock, crypto_challenge=False, strict_multiaddr=False)
    r.connect("a")
    r.connect("b")
    join_(r, "a", "/a1", "")
    assert join_(r, "a", "/a2", "")[1] == [Announce("/a2", skip=None, join=True)]
    assert join_(r, "b", "/b", "")[1] == [Announce("/b", skip=o("b"), join=True)]


def test_nobody_to_announce_to(clock: Clock) -> None:
    r = make(clock, crypto_challenge=False, strict_multiaddr=False)
    r.connect("a")
    assert join_(r, "a", "/a", "")[1] == []
    clock.now += 10
    assert r.announcements_due(clock.now) == []


def _two_peers(clock: Clock) -> Rendezvous:
    r = make(clock, crypto_challenge=False, strict_multiaddr=False)
    r.connect("A")
    r.connect("B")
    join_(r, "A", "/a", "")
    join_(r, "B", "/b", "")
    return r


def test_dial_sequence_matches_the_reference(clock: Clock) -> None:
    r = _two_peers(clock)
    reply, effects = dial_(r, "A", "/a", "/b", "X")
    key = DialKey(o("A"), "X")
    assert reply is None
    assert effects == [
        Emit(o("A"), "socket.io-pull-stream.accept.X.dialer", ()),
        AskIncoming(o("B"), key, ("X", "/a")),
    ]
    assert r.stream_event("A", "socket.io-pull-stream.queue.X.dialer", (b"early",)) == []
    assert r.stream_event("B", "socket.io-pull-stream.accept.X.dialer", ()) == [
        Emit(o("B"), "socket.io-pull-stream.queue.X.dialer", (b"early",))
    ]
    assert r.dial_answered(key, None) == [
        Emit(o("B"), "socket.io-pull-stream.accept.X.listener", ()),
        AnswerDial(key, CONNECTED),
    ]
    r.stream_event("A", "socket.io-pull-stream.accept.X.listener", ())
    assert r.stream_event(
        "B", "socket.io-pull-stream.queue.X.listener", ({"type": "Buffer", "data": [104, 105]},)
    ) == [Emit(o("A"), "socket.io-pull-stream.queue.X.listener", (b"hi",))]
    assert r.stats.dials_success == 1 and r.stats.dials_total == 1


def test_dial_errors(clock: Clock) -> None:
    r = _two_peers(clock)
    assert dial_(r, "A", "/nope", "/b", "X")[0] == (Reason.NOT_AUTHORIZED.value,)
    assert dial_(r, "A", "/a", "/c", "X")[0] == (Reason.PEER_NOT_FOUND.value,)
    assert dial_(r, "A", "/a", "/b", "X")[0] is None
    assert dial_(r, "A", "/a", "/b", "X")[0] == (Reason.DIAL_ID_IN_USE.value,)
    assert r.stats.dials_failure == 3


def test_listener_error_is_forwarded_unchanged_and_the_stream_discarded(clock: Clock) -> None:
    r = _two_peers(clock)
    dial_(r, "A", "/a", "/b", "X")
    key = DialKey(o("A"), "X")
    assert r.dial_answered(key, "nope-from-listener") == [
        AnswerDial(key, ListenerError("nope-from-listener"))
    ]
    assert len(r.streams) == 0
    assert r.dial_answered(key, None) == []  # a late second answer changes nothing


def test_dial_timeout_and_target_disconnect_fail_the_dial(clock: Clock) -> None:
    r = _two_peers(clock)
    dial_(r, "A", "/a", "/b", "X")
    assert r.dial_timed_out(DialKey(o("A"), "X")) == [
        AnswerDial(DialKey(o("A"), "X"), Refusal(Reason.DIAL_TIMEOUT))
    ]
    dial_(r, "A", "/a", "/b", "Y")
    assert r.disconnect("B") == [AnswerDial(DialKey(o("A"), "Y"), Refusal(Reason.DIAL_TARGET_GONE))]
    assert r.pending_dials() == 0 and len(r.streams) == 0
    assert r.stats.dials_failure == 2


def test_disconnect_mid_stream_ends_the_other_side(clock: Clock) -> None:
    r = _two_peers(clock)
    dial_(r, "A", "/a", "/b", "X")
    r.stream_event("B", "socket.io-pull-stream.accept.X.dialer", ())
    r.dial_answered(DialKey(o("A"), "X"), None)
    r.stream_event("A", "socket.io-pull-stream.accept.X.listener", ())
    assert r.disconnect("A") == [Emit(o("B"), "socket.io-pull-stream.error.X.dialer", (True,))]
    assert len(r.streams) == 0
    assert len(r.directory) == 1


def test_dialer_disconnect_while_pending_forgets_the_dial(clock: Clock) -> None:
    r = _two_peers(clock)
    dial_(r, "A", "/a", "/b", "X")
    assert r.disconnect("A") == []
    assert r.pending_dials() == 0
    assert r.dial_answered(DialKey(o("A"), "X"), None) == []


def test_self_dial_works(clock: Clock) -> None:
    r = _two_peers(clock)
    reply, effects = dial_(r, "A", "/a", "/a", "S")
    assert reply is None and isinstance(effects[-1], AskIncoming) and effects[-1].to == o("A")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"ab", b"ab"),
        (bytearray(b"ab"), b"ab"),
        ("str", b"str"),
        ([1, 2, 300], bytes([1, 2, 44])),
        ({"type": "Buffer", "data": [104, 105]}, b"hi"),
        (5, None),
        (None, None),
        ({"type": "Other"}, None),
    ],
)
def test_chunk_forms_the_reference_accepts(value: object, expected: bytes | None) -> None:
    assert to_chunk(value) == expected


def test_addresses_and_dials_per_socket_are_bounded(clock: Clock) -> None:
    r = make(
        clock,
        crypto_challenge=False,
        strict_multiaddr=False,
        max_addresses_per_socket=2,
        max_pending_dials_per_socket=1,
    )
    r.connect("A")
    r.connect("B")
    assert join_(r, "A", "/a1", "")[0][0] is None
    assert join_(r, "A", "/a2", "")[0][0] is None
    assert join_(r, "A", "/a1", "")[0][0] is None  # re-joining a held address is fine
    assert join_(r, "A", "/a3", "")[0] == (Reason.TOO_MANY_ADDRESSES.value,)
    join_(r, "B", "/b", "")
    assert dial_(r, "A", "/a1", "/b", "d1")[0] is None
    assert dial_(r, "A", "/a1", "/b", "d2")[0] == (Reason.TOO_MANY_DIALS.value,)
    r.dial_answered(DialKey(o("A"), "d1"), None)
    assert dial_(r, "A", "/a1", "/b", "d2")[0] is None


def test_a_dial_id_in_use_at_the_listener_is_refused(clock: Clock) -> None:
    r = _two_peers(clock)
    r.connect("C")
    join_(r, "C", "/c", "")
    in_use = (Reason.DIAL_ID_IN_USE.value,)
    # Pending toward B: another dialer may not pick the same id for B.
    assert dial_(r, "A", "/a", "/b", "X")[0] is None
    assert dial_(r, "C", "/c", "/b", "X")[0] == in_use
    # Answered and relaying: still refused, either way round.
    r.stream_event(SocketId("B"), "socket.io-pull-stream.accept.X.dialer", ())
    r.dial_answered(DialKey(o("A"), "X"), None)
    assert dial_(r, "C", "/c", "/b", "X")[0] == in_use
    # Another listener, or another id, is fine.
    assert dial_(r, "C", "/c", "/a", "X")[0] is None
    assert dial_(r, "C", "/c", "/b", "Y")[0] is None
    assert r.stats.dials_failure == 2


def test_dials_waiting_on_one_listener_are_capped(clock: Clock) -> None:
    r = make(
        clock, crypto_challenge=False, strict_multiaddr=False, max_pending_dials_per_listener=2
    )
    for sid in ("A", "B", "C", "L"):
        r.connect(sid)
        join_(r, sid, f"/{sid}", "")
    assert dial_(r, "A", "/A", "/L", "1")[0] is None
    assert dial_(r, "B", "/B", "/L", "2")[0] is None
    assert dial_(r, "C", "/C", "/L", "3")[0] == (Reason.LISTENER_BUSY.value,)
    r.dial_timed_out(DialKey(o("A"), "1"))
    assert dial_(r, "C", "/C", "/L", "3")[0] is None


def test_relayed_streams_per_socket_are_capped(clock: Clock) -> None:
    r = make(clock, crypto_challenge=False, strict_multiaddr=False, max_streams_per_socket=2)
    for sid in ("A", "B"):
        r.connect(sid)
        join_(r, sid, f"/{sid}", "")
    for dial_id in ("1", "2"):
        assert dial_(r, "A", "/A", "/B", dial_id)[0] is None
    assert dial_(r, "A", "/A", "/B", "3")[0] == (Reason.TOO_MANY_STREAMS.value,)
    # The listener's own half counts against the listener.
    r2 = make(clock, crypto_challenge=False, strict_multiaddr=False, max_streams_per_socket=1)
    for sid in ("A", "B"):
        r2.connect(sid)
        join_(r2, sid, f"/{sid}", "")
    dial_(r2, "A", "/A", "/B", "1")
    dial_(r2, "B", "/B", "/A", "2")
    assert r2.dial_answered(DialKey(o("A"), "1"), None) == [
        AnswerDial(DialKey(o("A"), "1"), Refusal(Reason.TOO_MANY_STREAMS))
    ]


def test_a_join_ack_in_a_large_swarm_lists_the_newest_half_and_a_sample_of_the_rest(
    clock: Clock,
) -> None:
    r = make(clock, crypto_challenge=False, strict_multiaddr=False, join_peers_limit=10)
    for i in range(30):
        r.connect(f"s{i}")
        join_(r, f"s{i}", f"/{i}", "")
        clock.now += 1.0
    r.connect("new")
    (_, _, peers), _ = join_(r, "new", "/new", "")
    assert isinstance(peers, list) and len(peers) == 10 and len(set(peers)) == 10
    assert peers[5:] == [f"/{i}" for i in range(25, 30)]  # the five most recent
    assert set(peers[:5]) <= {f"/{i}" for i in range(25)}
    # At or under the limit, everyone, in join order, as the reference sends.
    small = make(clock, crypto_challenge=False, strict_multiaddr=False, join_peers_limit=10)
    for i in range(11):
        small.connect(f"s{i}")
        reply, _ = join_(small, f"s{i}", f"/{i}", "")
    assert reply == (None, None, [f"/{i}" for i in range(10)])


def test_joins_of_a_moment_in_a_large_swarm_share_one_drawn_list(clock: Clock) -> None:
    r = make(clock, crypto_challenge=False, strict_multiaddr=False, join_peers_limit=10)
    for i in range(30):
        r.connect(f"s{i}")
        join_(r, f"s{i}", f"/{i}", "")
        clock.now += 1.0

    def listed(sid: str, address: str) -> Joined:
        r.connect(sid)
        reply, _ = r.join(SocketId(sid), JoinRequest(address, ""))
        assert isinstance(reply, Joined)
        assert reply.listed == codec.quoted_list([codec.quote(p) for p in reply.peers])
        return reply

    first = listed("n1", "/n1")
    clock.now += LISTING_REUSE / 2
    second = listed("n2", "/n2")
    assert second.peers is first.peers and second.listed is first.listed
    assert "/n1" not in second.peers  # it reaches n2 in its replay
    # A join the list names gets one without itself, and a listed peer that
    # leaves takes the list with it.
    again = listed("again", first.peers[0])
    assert first.peers[0] not in again.peers
    gone = again.peers[0]
    r.disconnect(SocketId(next(f"s{i}" for i in range(30) if f"/{i}" == gone)))
    after = listed("n3", "/n3")
    assert gone not in after.peers and after.peers is not again.peers
    # Past the reuse time the list is drawn again.
    clock.now += LISTING_REUSE * 2
    assert listed("n4", "/n4").peers is not after.peers
    # n2's replay adds the joins since its list was drawn, n1's among them.
    clock.now += 1.0
    due = r.announcements_due(clock.now)
    replays = {e.to.socket: e.addresses for e in due if isinstance(e, Replay)}
    assert "/n1" in replays[SocketId("n2")]


def test_a_socket_joining_a_large_swarm_is_sent_nothing_until_its_replay(clock: Clock) -> None:
    settings = Settings(crypto_challenge=False, strict_multiaddr=False, join_peers_limit=3)
    r = Rendezvous(MemoryDirectory(), settings, 10.0, clock, announce_budget=100)
    held = []
    for i in range(6):
        r.connect(f"s{i}")
        _, effects = join_(r, f"s{i}", f"/{i}", "")
        held.append([e for e in effects if isinstance(e, AwaitReplay)])
    # Up to the limit the ack lists everyone and nothing is held back.
    assert held[:4] == [[], [], [], []]
    assert held[4:] == [[AwaitReplay(o("s4"), 0.75)], [AwaitReplay(o("s5"), 0.75)]]
    # Without a budget every join is announced to everyone, as the reference does.
    unbudgeted = make(clock, crypto_challenge=False, strict_multiaddr=False, join_peers_limit=3)
    for i in range(6):
        unbudgeted.connect(f"s{i}")
        _, effects = join_(unbudgeted, f"s{i}", f"/{i}", "")
        assert not any(isinstance(e, AwaitReplay) for e in effects)


def test_a_new_socket_hears_again_of_what_it_was_told_before_it_listened(clock: Clock) -> None:
    r = make(clock, crypto_challenge=False, strict_multiaddr=False, join_replay_delay=1.5)
    for sid in ("a", "b", "new"):
        r.connect(sid)
    join_(r, "a", "/a", "")
    join_(r, "b", "/b", "")
    clock.now += 0.1
    join_(r, "new", "/new", "")
    clock.now += 0.5
    r.connect("late")
    join_(r, "late", "/late", "")  # announced to "new" before it listened
    r.leave("a", LeaveRequest("/a"))  # gone again: not replayed
    clock.now += 1.0
    replays = [e for e in r.announcements_due(clock.now) if isinstance(e, Replay)]
    # b's is due too: it hears of those who joined after it; a, which left
    # its address, hears nothing.
    assert replays == [Replay(o("b"), ("/late", "/new")), Replay(o("new"), ("/late", "/b"))]
    clock.now += 1.0
    later = [e for e in r.announcements_due(clock.now) if isinstance(e, Replay)]
    assert later == [Replay(o("late"), ("/new", "/b"))]


def test_a_replay_stays_within_the_socket_budget(clock: Clock) -> None:
    r = Rendezvous(
        MemoryDirectory(),
        Settings(crypto_challenge=False, strict_multiaddr=False),
        announce_interval=10.0,
        announce_budget=3,
        clock=clock,
    )
    for i in range(6):
        r.connect(f"s{i}")
        join_(r, f"s{i}", f"/{i}", "")
    clock.now += 2
    replays = [e for e in r.announcements_due(clock.now) if isinstance(e, Replay)]
    assert replays[-1] == Replay(o("s5"), ("/4", "/3", "/2"))


def _rsa_marshalled(bits: int, exponent: int = 65537) -> tuple[bytes, str]:
    """A marshalled libp2p RSA public key and its (sha256) peer id."""
    return marshalled_rsa(rsa.generate_private_key(exponent, bits).public_key())


@pytest.mark.parametrize(
    ("bits", "exponent", "refusal"),
    [
        (2048, 65537, None),
        (4096, 65537, None),
        (1024, 65537, "Invalid public key: an RSA key must have 2048 to 4096 bits"),
        (2048, 3, "Invalid public key: an RSA key must have the public exponent 65537"),
    ],
)
def test_only_cheap_rsa_keys_may_take_the_challenge(
    clock: Clock, bits: int, exponent: int, refusal: str | None
) -> None:
    r = make(clock)
    r.connect("s")
    marshalled, peer_id = _rsa_marshalled(bits, exponent)
    addr = f"/ip4/127.0.0.1/tcp/{PORT}/ws/p2p-websocket-star/ipfs/{peer_id}"
    reply, _ = join_(r, "s", addr, marshalled.hex())
    if refusal is None:
        assert reply[0] is None and isinstance(reply[1], str)  # a nonce to sign
    else:
        assert reply == (refusal,)


def test_one_key_joining_other_spellings_of_its_address_is_one_peer(clock: Clock) -> None:
    r = make(clock)
    r.connect("s")
    r.connect("other")
    ident = Identity.generate()
    spellings = [
        ident.address(PORT),
        ident.address(PORT).replace("/ipfs/", "/p2p/"),
        ident.address(PORT) + "/",
        ident.address(PORT).replace("/ws/", "//ws/"),
    ]
    for addr in spellings:
        (_, nonce), _ = join_(r, "s", addr, ident.marshalled_public_key.hex())
        reply, _ = join_(r, "s", addr, ident.sign_hex(str(nonce)))
        assert reply[:2] == (None, None)
        # Each join moves the peer to the new spelling: one entry, one owner.
        assert list(r.directory.addresses()) == [addr]
        assert r.directory.owned_by(o("s")) == {addr}
    assert len(r.schedule._current) == 1
    assert dial_(r, "s", spellings[0], spellings[-1], "d")[0] == (Reason.NOT_AUTHORIZED.value,)


def test_without_the_challenge_both_forms_of_an_id_are_one_peer(clock: Clock) -> None:
    r = make(clock, crypto_challenge=False)
    r.connect("s")
    ident = Identity.generate()
    hashed = sha256_peer_id(ident.marshalled_public_key)
    inline = ident.address(PORT)
    for addr in (inline, inline.replace(ident.peer_id, hashed), inline):
        assert join_(r, "s", addr, "")[0][:2] == (None, None)
        assert list(r.directory.addresses()) == [addr]
