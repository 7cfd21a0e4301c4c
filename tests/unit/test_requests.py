"""Request parsing: shapes and sizes, and the exact text of each refusal."""

from __future__ import annotations

import pytest

from wsstar.wire.reasons import Refusal
from wsstar.wire.requests import (
    MAX_ADDRESS_LENGTH,
    MAX_CHALLENGE_DATA_LENGTH,
    MAX_DIAL_ID_LENGTH,
    DialRequest,
    JoinRequest,
    LeaveRequest,
    parse_dial,
    parse_join,
    parse_leave,
)

WS_STAR = "/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star"
JOIN_SHAPE = "Bad request: ss-join expects (multiaddr, string)"
DIAL_SHAPE = "Bad request: ss-dial expects (multiaddr, multiaddr, dial id)"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], JOIN_SHAPE),
        ([1, 2], JOIN_SHAPE),
        ([WS_STAR], JOIN_SHAPE),
        ([{"a": 1}, None], JOIN_SHAPE),
        ([WS_STAR, None], JOIN_SHAPE),
        (["foo", "aa"], "Invalid multiaddr"),
        ([WS_STAR + "/ipfs/Qm" + "a" * MAX_ADDRESS_LENGTH, "aa"], "Invalid multiaddr"),
        ([WS_STAR, "a" * (MAX_CHALLENGE_DATA_LENGTH + 1)], "Bad request: challenge data too long"),
        ([WS_STAR + "/ipfs/QmA\n", ""], "Invalid multiaddr"),
        ([WS_STAR + "/ipfs/QmA ", ""], "Invalid multiaddr"),
        ([WS_STAR + "/ipfs/QmA\x1f", ""], "Invalid multiaddr"),
        (["/dns4/a b/tcp/1/ws/p2p-websocket-star", ""], "Invalid multiaddr"),
        ([WS_STAR + "\u0085", ""], "Invalid multiaddr"),
    ],
)
def test_malformed_joins_are_refused_with_their_reason(args: list[object], expected: str) -> None:
    refusal = parse_join(args)
    assert isinstance(refusal, Refusal)
    assert refusal.text == expected


def test_well_formed_joins() -> None:
    assert parse_join([WS_STAR, ""]) == JoinRequest(WS_STAR, "")
    data = "a" * MAX_CHALLENGE_DATA_LENGTH
    assert parse_join([WS_STAR, data, "extra"]) == JoinRequest(WS_STAR, data)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["/a", "/b"],
        ["/a", "/b", 7],
        ["/a", "/b", ""],
        ["/a", "/b", "x" * (MAX_DIAL_ID_LENGTH + 1)],
        ["/a" * MAX_ADDRESS_LENGTH, "/b", "id"],
        ["/a", "/b" * MAX_ADDRESS_LENGTH, "id"],
        [None, "/b", "id"],
    ],
)
def test_malformed_dials_are_refused(args: list[object]) -> None:
    refusal = parse_dial(args)
    assert isinstance(refusal, Refusal)
    assert refusal.text == DIAL_SHAPE


def test_well_formed_dials_need_not_be_multiaddrs_yet() -> None:
    # Authorisation comes next, in the rules: an address the dialer has not
    # joined is refused there, with the reference's wording.
    dial_id = "x" * MAX_DIAL_ID_LENGTH
    assert parse_dial(["/a", "/b", dial_id]) == DialRequest("/a", "/b", dial_id)


def test_leave_takes_an_address_and_ignores_anything_else() -> None:
    assert parse_leave(["/a"]) == LeaveRequest("/a")
    assert parse_leave([]) is None
    assert parse_leave([5]) is None
