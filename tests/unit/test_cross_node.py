"""Dials and relays between two nodes' rules, driven directly: the dialer's
node keeps the connection, the listener's node routes its socket's part."""

from __future__ import annotations

import pytest

from tests.support.identity import Identity
from tests.unit.test_rules import PORT, Clock, dial_, join
from wsstar.cluster import frames
from wsstar.directory import NodeId, Owner, SocketId
from wsstar.directory.memory import MemoryDirectory
from wsstar.star.effects import AnswerDial, AskIncoming, DialKey, Emit
from wsstar.star.rendezvous import Rendezvous, Settings
from wsstar.star.routes import Asked, Routes
from wsstar.wire.reasons import Reason, Refusal
from wsstar.wire.replies import CONNECTED

N1, N2 = NodeId("n1"), NodeId("n2")
SA, SB = SocketId("sa"), SocketId("sb")
A, B = Owner(N1, SA), Owner(N2, SB)
ACCEPT = "socket.io-pull-stream.accept."
QUEUE = "socket.io-pull-stream.queue."
ERROR = "socket.io-pull-stream.error."


class Pair:
    """Node one with socket ``sa`` joined, node two with ``sb``, each
    knowing the other's address (as their replicas would)."""

    def __init__(self, clock: Clock, **settings: object) -> None:
        self.one = Rendezvous(MemoryDirectory(N1), Settings(**settings), 10.0, clock)  # type: ignore[arg-type]
        self.two = Rendezvous(MemoryDirectory(N2), Settings(**settings), 10.0, clock)  # type: ignore[arg-type]
        ia, ib = Identity.generate(), Identity.generate()
        self.addr_a, self.addr_b = ia.address(PORT), ib.address(PORT)
        self.one.connect(SA)
        self.two.connect(SB)
        join(self.one, SA, ia)
        join(self.two, SB, ib)
        self.one.directory.claim(self.addr_b, B)
        self.two.directory.claim(self.addr_a, A)

    def ask(self, dial_id: str = "X", ack_id: int = 1) -> DialKey:
        """a dials b; node two sends ss-incomming with ``ack_id``."""
        refusal, effects = dial_(self.one, SA, self.addr_a, self.addr_b, dial_id)
        assert refusal is None
        key = DialKey(A, dial_id)
        assert effects == [
            Emit(A, ACCEPT + dial_id + ".dialer", ()),
            AskIncoming(B, key, (dial_id, self.addr_a)),
        ]
        assert self.two.remote_asked(SB, dial_id) is None
        self.two.routes.ask(SB, ack_id, Asked(N1, SA, dial_id))
        return key


@pytest.fixture
def pair(clock: Clock) -> Pair:
    return Pair(clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_dial_to_another_node_runs_as_on_one_node(pair: Pair) -> None:
    key = pair.ask()
    # b accepts the dialer's stream: its node routes the accept to node one.
    assert pair.two.routes.sink(SB, "X.dialer") == N1
    early = pair.one.stream_event(SA, QUEUE + "X.dialer", (b"early",))
    assert early == []  # held until b's accept arrives
    assert pair.one.remote_stream_event(B, ACCEPT + "X.dialer", ()) == [
        Emit(B, QUEUE + "X.dialer", (b"early",))
    ]
    # b answers; the stream back to a goes through node one too.
    assert pair.two.routes.answered(SB, 1, connected=True) == Asked(N1, SA, "X")
    assert pair.two.routes.source(SB, "X.listener") == N1
    assert pair.one.dial_answered(key, None) == [
        Emit(B, ACCEPT + "X.listener", ()),
        AnswerDial(key, CONNECTED),
    ]
    assert pair.one.stream_event(SA, ACCEPT + "X.listener", ()) == []
    assert pair.one.remote_stream_event(B, QUEUE + "X.listener", (b"back",)) == [
        Emit(A, QUEUE + "X.listener", (b"back",))
    ]
    # a leaves: its stream ends toward b, and node two is told which of
    # b's routes are finished.
    assert pair.one.disconnect(SA) == [Emit(B, ERROR + "X.dialer", (True,))]
    assert sorted(pair.one.streams.departed) == [
        (B, "X.dialer", False),
        (B, "X.listener", True),
    ]
    for owner, name, as_source in pair.one.streams.departed:
        pair.two.routes.forget(owner.socket, name, as_source)
    assert len(pair.two.routes) == 0 and len(pair.one.streams) == 0


def test_the_listener_s_node_checks_what_only_it_knows(clock: Clock) -> None:
    pair = Pair(clock, max_pending_dials_per_listener=2)
    assert pair.two.remote_asked(SocketId("nobody"), "X") == Refusal(Reason.PEER_NOT_FOUND)
    pair.ask("X", 1)
    assert pair.two.remote_asked(SB, "X") == Refusal(Reason.DIAL_ID_IN_USE)
    # A local dialer on node two meets the same checks.
    pair.two.connect(SocketId("sc"))
    ic = Identity.generate()
    join(pair.two, SocketId("sc"), ic)
    assert dial_(pair.two, "sc", ic.address(PORT), pair.addr_b, "X")[0] == (
        Reason.DIAL_ID_IN_USE.value,
    )
    pair.ask("Y", 2)
    assert pair.two.remote_asked(SB, "Z") == Refusal(Reason.LISTENER_BUSY)


def test_a_dial_id_in_use_toward_a_remote_listener_is_refused_on_the_dialer_s_node(
    pair: Pair,
) -> None:
    pair.ask("X")
    pair.one.connect(SocketId("sc"))
    ic = Identity.generate()
    join(pair.one, SocketId("sc"), ic)
    assert dial_(pair.one, "sc", ic.address(PORT), pair.addr_b, "X")[0] == (
        Reason.DIAL_ID_IN_USE.value,
    )


def test_a_refusal_from_the_listener_s_node_fails_the_dial(pair: Pair) -> None:
    key = pair.ask()
    assert pair.one.dial_refused(key, Refusal(Reason.TOO_MANY_STREAMS)) == [
        AnswerDial(key, Refusal(Reason.TOO_MANY_STREAMS))
    ]
    assert pair.one.pending_dials() == 0 and len(pair.one.streams) == 0
    assert pair.one.stats.dials_failure == 1


def test_a_remote_socket_or_node_gone_ends_its_dials_and_streams(pair: Pair) -> None:
    key = pair.ask("X")
    pair.two.routes.answered(SB, 1, connected=True)
    pair.one.dial_answered(key, None)
    pending = pair.ask("Y", 2)
    pair.one.stream_event(SA, ACCEPT + "X.listener", ())
    effects = pair.one.node_gone(N2)
    assert sorted(map(repr, effects)) == sorted(
        map(
            repr,
            [
                AnswerDial(pending, Refusal(Reason.DIAL_TARGET_GONE)),
                Emit(A, ERROR + "X.listener", (True,)),
            ],
        )
    )
    assert pair.one.pending_dials() == 0 and len(pair.one.streams) == 0
    assert pair.one.streams.departed == []  # nothing is sent to a gone node


def test_routes_are_dropped_with_their_socket_or_node() -> None:
    routes = Routes()
    routes.ask(SB, 1, Asked(N1, SA, "X"))
    routes.ask(SB, 2, Asked(NodeId("n3"), SocketId("sc"), "Y"))
    routes.answered(SB, 1, connected=True)
    assert routes.sending(SB) == 1 and routes.pending(SB) == 1
    assert routes.sink(SB, "X.dialer") == N1 and routes.sink(SB, "Y.dialer") == NodeId("n3")
    routes.drop_node(N1)
    assert routes.sink(SB, "X.dialer") is None and routes.sending(SB) == 0
    assert routes.sink(SB, "Y.dialer") == NodeId("n3")
    routes.cancel(SB, Asked(NodeId("n3"), SocketId("sc"), "Y"))
    assert len(routes) == 0
    routes.ask(SB, 3, Asked(N1, SA, "Z"))
    assert routes.answered(SB, 3, connected=False) is not None
    assert len(routes) == 0
    routes.ask(SB, 4, Asked(N1, SA, "W"))
    assert routes.drop_socket(SB) == {N1} and len(routes) == 0


def test_frames_survive_any_split() -> None:
    chunk = frames.encode(["c", "sid", "X.dialer"], b"\x00\x01" * 1000)
    data = chunk + frames.encode(["gone", "s"])
    for step in (1, 7, 4096):
        reader = frames.FrameReader()
        got = []
        for i in range(0, len(data), step):
            got.extend(reader.feed(data[i : i + step]))
        assert got == [(["c", "sid", "X.dialer"], b"\x00\x01" * 1000), (["gone", "s"], b"")]


@pytest.mark.parametrize(
    "frame",
    [
        b"\xff\xff\xff\xff\x00\x00\x00\x00",
        frames.encode(["x"])[:8] + b"nonsense",
        b"\x00\x00\x00\x02\x00\x00\x00\x00{}",
    ],
)
def test_unreadable_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(frames.BadFrame):
        frames.FrameReader().feed(frame)
