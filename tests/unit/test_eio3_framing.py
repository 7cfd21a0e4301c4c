"""Engine.IO v3 framing as pure functions: payloads and websocket frames."""

from __future__ import annotations

import pytest

from wsstar.errors import ProtocolError
from wsstar.wire import eio3


def test_text_payload_lengths_count_utf16_units() -> None:
    assert eio3.utf16_length("abc") == 3
    assert eio3.utf16_length("é") == 1
    assert eio3.utf16_length("😀") == 2
    body = eio3.encode_payload(["4😀", "2probe"])
    assert body == "3:4😀6:2probe".encode()
    assert eio3.decode_payload(body, "text/plain;charset=UTF-8") == ["4😀", "2probe"]


def test_binary_messages_travel_as_base64_text_in_responses() -> None:
    assert eio3.encode_payload([b"\x00\xff"]) == b"6:b4AP8="
    assert eio3.decode_payload(b"6:b4AP8=", "text/plain") == [b"\x00\xff"]


def test_xhr2_binary_payloads() -> None:
    body = bytes([0, 2, 0xFF]) + b"42" + bytes([1, 3, 0xFF, 4]) + b"\x01\x02"
    assert eio3.decode_payload(body, "application/octet-stream") == ["42", b"\x01\x02"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"garbage!", "text/plain"),
        (b"5:4ab", "text/plain"),
        (b"0:", "text/plain"),
        (b"2:9x", "text/plain"),
        (b"3:b4!", "text/plain"),
        (b"\xff\xfe", "text/plain"),
        (bytes([2, 1, 0xFF]) + b"4", "application/octet-stream"),
        (bytes([1, 5, 0xFF]) + b"\x04", "application/octet-stream"),
        (bytes([1, 1, 0xFF]) + b"\x03", "application/octet-stream"),
    ],
)
def test_malformed_payloads_are_protocol_errors(body: bytes, content_type: str) -> None:
    with pytest.raises(ProtocolError):
        eio3.decode_payload(body, content_type)


def test_websocket_frames() -> None:
    assert eio3.websocket_frame("42[]", b64=False) == "42[]"
    assert eio3.websocket_frame(b"\x01", b64=False) == b"\x04\x01"
    assert eio3.websocket_frame(b"\x01", b64=True) == "b4AQ=="
    assert eio3.read_websocket_frame(b"\x04\x01") == b"\x01"
    assert eio3.read_websocket_frame("b4AQ==") == b"\x01"
    assert eio3.read_websocket_frame("42[]") == "42[]"
    with pytest.raises(ProtocolError):
        eio3.read_websocket_frame(b"\x03\x01")
    with pytest.raises(ProtocolError):
        eio3.read_websocket_frame("b4***")


def test_a_v3_request_passes_under_the_v4_name_with_its_other_parameters_untouched() -> None:
    assert eio3.v3_query("EIO=3&transport=websocket") == ("EIO=4&transport=websocket", False)
    assert eio3.v3_query("transport=polling&EIO=3&b64=1&t=Mx%2Fa") == (
        "transport=polling&EIO=4&b64=1&t=Mx%2Fa",
        True,
    )
    assert eio3.v3_query("EIO=3&b64=true") == ("EIO=4&b64=true", True)
    assert eio3.v3_query("EIO=3&b64=0") == ("EIO=4&b64=0", False)


@pytest.mark.parametrize("query", ["", "EIO=4&transport=websocket", "EIO=3&EIO=4", "EIO=33"])
def test_other_requests_are_not_v3(query: str) -> None:
    assert eio3.v3_query(query) is None
