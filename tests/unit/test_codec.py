import pytest
from socketio import packet as sio_packet

from wsstar.wire import codec
from wsstar.wire.replies import Joined, join_ack

DATA = [
    ["ss-join", "/ip4/127.0.0.1/tcp/1/ws/p2p-websocket-star/ipfs/QmA", ""],
    ["ss-incomming", "d1", "/ip4/a", "/ip4/b"],
    [None, ["/ip4/a", "/ip4/b"]],
    [None],
    [],
    ["ünïcødé ✓", {"nested": [1, 2.5, True, False, None]}, 'quote" back\\slash'],
    ["socket.io-pull-stream.error.d.dialer", True],
]


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("ack_id", [None, 0, 7, 123456])
@pytest.mark.parametrize("packet_type", [codec.EVENT, codec.ACK])
def test_same_text_as_python_socketio_both_ways(
    packet_type: int, ack_id: int | None, data: list[object]
) -> None:
    expected = sio_packet.Packet(packet_type, data=data, namespace="/", id=ack_id).encode()
    assert codec.encode(packet_type, data, ack_id) == expected
    reference = sio_packet.Packet(encoded_packet=expected)
    assert codec.decode(expected) == (reference.packet_type, reference.id, reference.data)


def test_binary_data_is_left_to_python_socketio() -> None:
    assert codec.encode(codec.EVENT, ["socket.io-pull-stream.queue.d.dialer", b"\x00"]) is None
    assert codec.encode(codec.ACK, [None, [b"nested"]]) is None


@pytest.mark.parametrize(
    "text",
    [
        "0",  # connect
        '0{"token":1}',
        "1",
        '2/chat,["x"]',  # another namespace
        '2/chat,5["x"]',
        '51-["x",{"_placeholder":true,"num":0}]',  # binary event
        '21-["x"]',
        '2"not an array"',
        "2",
        "3",
        '4"error"',
        "2" + "1" * 100 + '["x"]',  # an ack id longer than python-socketio allows
        '2²["x"]',  # a digit that is not ASCII
    ],
)
def test_other_packets_are_left_to_python_socketio(text: str) -> None:
    assert codec.decode(text) is None


@pytest.mark.parametrize("text", ['2["x"', '2["x"] trailing', "3[nul]", "2[" + "9" * 101 + "]"])
def test_malformed_json_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"Expecting|Extra data|integer too large"):
        codec.decode(text)


@pytest.mark.parametrize("stream", ["d.dialer", "x.listener", "ünï.dialer", "a-b_c.dialer"])
def test_chunk_head_is_python_socketios_binary_event(stream: str) -> None:
    event = "socket.io-pull-stream.queue." + stream
    expected = sio_packet.Packet(
        sio_packet.EVENT, data=[event, b"\x00\x01"], namespace="/", binary=True
    ).encode()
    assert [codec.chunk_head(stream), b"\x00\x01"] == expected


@pytest.mark.parametrize(
    ("text", "stream"),
    [
        (codec.chunk_head("d.dialer"), "d.dialer"),
        ('51-["socket.io-pull-stream.queue.",{"_placeholder":true,"num":0}]', None),
        ('51-["socket.io-pull-stream.queue.a\\"b",{"_placeholder":true,"num":0}]', None),
        ('51-["socket.io-pull-stream.queue.a",{"_placeholder":true,"num":1}]', None),
        ('52-["socket.io-pull-stream.queue.a",{"_placeholder":true,"num":0}]', None),
        ('51-7["socket.io-pull-stream.queue.a",{"_placeholder":true,"num":0}]', None),
    ],
)
def test_chunk_heads_are_recognised_only_in_their_usual_form(text: str, stream: str | None) -> None:
    assert codec.chunk_stream(text) == stream


@pytest.mark.parametrize(
    "peers",
    [[], ["/ip4/a"], ["/ip4/127.0.0.1/tcp/1/ws/p2p-websocket-star/ipfs/QmA", 'q"\\\n\x1f', "ü✓"]],
)
def test_a_join_ack_from_quoted_peers_is_the_same_text(peers: list[str]) -> None:
    listed = codec.quoted_list([codec.quote(p) for p in peers])
    expected = codec.encode(codec.ACK, list(join_ack(Joined(peers, listed))), 42)
    assert b"".join(codec.joined_ack(42, listed)).decode() == expected


@pytest.mark.parametrize(
    "address", ["", "/ip4/127.0.0.1/tcp/1/ws/p2p-websocket-star/ipfs/QmA", 'q"\\\n\x1f', "ü✓/"]
)
def test_an_announcement_from_a_quoted_address_is_the_same_text(address: str) -> None:
    assert codec.peer_announcement(codec.quote(address)) == codec.encode(
        codec.EVENT, ["ws-peer", address]
    )
