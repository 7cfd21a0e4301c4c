from wsstar.directory import LOCAL_NODE, Owner, SocketId
from wsstar.star.effects import Emit
from wsstar.star.relay import BACKLOG_OVERFLOW, StreamTable
from wsstar.wire.events import StreamEvent, other_half, parse_stream_event

A, B = Owner(LOCAL_NODE, SocketId("dialer")), Owner(LOCAL_NODE, SocketId("listener"))


def stream_sockets(t: StreamTable) -> set[object]:
    """Every socket that still has a stream entry, sending or receiving."""
    return set(t._by_source) | set(t._by_sink)


def test_parse_stream_event() -> None:
    assert parse_stream_event("socket.io-pull-stream.queue.x.dialer") == (
        StreamEvent.QUEUE,
        "x.dialer",
    )
    assert parse_stream_event("socket.io-pull-stream.accept.x") == (StreamEvent.ACCEPT, "x")
    assert parse_stream_event("socket.io-pull-stream.queue.") is None
    assert parse_stream_event("socket.io-pull-stream.bogus.x") is None
    assert parse_stream_event("ss-join") is None


def test_the_other_half_of_a_relayed_connection() -> None:
    assert other_half("d.dialer") == "d.listener"
    assert other_half("a.b.listener") == "a.b.dialer"
    assert other_half(".dialer") is None
    assert other_half("dialer") is None
    assert other_half("d.other") is None


def test_open_tells_the_source_to_start_and_holds_chunks_until_the_sink_accepts() -> None:
    t = StreamTable()
    assert t.open(A, B, "d.dialer", 0.0) == [Emit(A, "socket.io-pull-stream.accept.d.dialer", ())]
    assert t.queue(A, "d.dialer", b"hello") == []
    assert t.queue(A, "d.dialer", b"") == []
    assert t.end(A, "d.dialer", True) == []
    assert t.accept(B, "d.dialer") == [
        Emit(B, "socket.io-pull-stream.queue.d.dialer", (b"hello",)),
        Emit(B, "socket.io-pull-stream.queue.d.dialer", (b"",)),
        Emit(B, "socket.io-pull-stream.error.d.dialer", (True,)),
    ]
    assert len(t) == 0


def test_after_accept_chunks_and_errors_pass_straight_through() -> None:
    t = StreamTable()
    t.open(A, B, "d.dialer", 0.0)
    t.accept(B, "d.dialer")
    assert t.queue(A, "d.dialer", b"x") == [
        Emit(B, "socket.io-pull-stream.queue.d.dialer", (b"x",))
    ]
    assert t.end(A, "d.dialer", "boom") == [
        Emit(B, "socket.io-pull-stream.error.d.dialer", ("boom",))
    ]
    assert t.queue(A, "d.dialer", b"late") == []


def test_only_the_bound_sockets_can_use_a_stream() -> None:
    t = StreamTable()
    t.open(A, B, "d.dialer", 0.0)
    assert t.accept("intruder", "d.dialer") == []
    t.accept(B, "d.dialer")
    assert t.queue("intruder", "d.dialer", b"x") == []
    assert t.queue(B, "d.dialer", b"x") == []


def test_disconnect_of_source_ends_stream_toward_sink() -> None:
    t = StreamTable()
    t.open(A, B, "d.dialer", 0.0)
    t.open(B, A, "d.listener", 0.0)
    t.accept(B, "d.dialer")
    t.accept(A, "d.listener")
    out = t.drop_socket(B)
    assert out == [Emit(A, "socket.io-pull-stream.error.d.listener", (True,))]
    assert t.queue(A, "d.dialer", b"x") == []
    assert len(t) == 0


def test_held_chunks_are_counted_per_source_until_accepted() -> None:
    t = StreamTable()
    t.open(A, B, "d.dialer", 0.0)
    t.open(A, B, "e.dialer", 0.0)
    t.queue(A, "d.dialer", b"123456")
    t.queue(A, "e.dialer", b"1234")
    assert t.held_bytes(A) == 10 and t.held_total() == 10
    t.accept(B, "d.dialer")
    assert t.held_bytes(A) == 4
    t.discard(A, "e.dialer")
    assert t.held_bytes(A) == 0 and t.held_total() == 0


def test_streams_nobody_accepts_expire_and_the_sender_learns_it() -> None:
    t = StreamTable()
    t.open(A, B, "d.dialer", 0.0)
    t.open(B, A, "d.listener", 0.0)
    t.accept(A, "d.listener")
    t.queue(A, "d.dialer", b"held")
    assert t.expire(14.0, 15.0) == []
    assert t.expire(15.0, 15.0) == [
        Emit(A, "socket.io-pull-stream.error.d.listener", (BACKLOG_OVERFLOW,))
    ]
    assert t.overflows == 1
    assert t.held_bytes(A) == 0
    assert len(t) == 0
    assert t.queue(A, "d.dialer", b"late") == []


def test_feeding_lists_the_streams_still_flowing_into_a_sink() -> None:
    t = StreamTable()
    t.open(A, B, "d.dialer", 0.0)
    c = Owner(LOCAL_NODE, SocketId("c"))
    t.open(c, B, "f.dialer", 0.0)
    t.end(c, "f.dialer", True)
    assert t.feeding(B) == [(A, "d.dialer")]
    assert t.receiving(B, "f.dialer") and not t.receiving(A, "f.dialer")
    assert t.sending(A) == 1


def test_cut_ends_both_halves_of_the_connection() -> None:
    t = StreamTable()
    t.open(A, B, "d.dialer", 0.0)
    t.open(B, A, "d.listener", 0.0)
    t.accept(B, "d.dialer")
    t.accept(A, "d.listener")
    assert t.cut(A, "d.dialer") == [
        Emit(B, "socket.io-pull-stream.error.d.dialer", (BACKLOG_OVERFLOW,)),
        Emit(A, "socket.io-pull-stream.error.d.listener", (BACKLOG_OVERFLOW,)),
    ]
    assert t.overflows == 1
    assert len(t) == 0
    assert t.queue(A, "d.dialer", b"more") == []


def test_a_departing_socket_takes_only_its_own_streams_and_leaves_no_entry() -> None:
    t = StreamTable()
    t.open(A, B, "d.dialer", 0.0)
    t.open(B, A, "d.listener", 0.0)
    t.open("c", "e", "f.dialer", 0.0)  # an unrelated pair
    t.accept(B, "d.dialer")
    t.accept(A, "d.listener")
    assert stream_sockets(t) == {A, B, "c", "e"}
    assert t.drop_socket(A) == [Emit(B, "socket.io-pull-stream.error.d.dialer", (True,))]
    assert stream_sockets(t) == {"c", "e"}
    assert len(t) == 1
    assert t.accept("e", "f.dialer") == []
    assert t.queue("c", "f.dialer", b"x") == [
        Emit("e", "socket.io-pull-stream.queue.f.dialer", (b"x",))
    ]


def test_a_discarded_stream_leaves_no_entry() -> None:
    t = StreamTable()
    t.open(A, B, "d.dialer", 0.0)
    t.discard(A, "d.dialer")
    assert stream_sockets(t) == set()
    assert len(t) == 0
    assert not t.exists(A, "d.dialer")
