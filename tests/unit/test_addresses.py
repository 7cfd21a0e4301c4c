"""Address checks, agreed case by case with js multiaddr 6.1.1 / mafmt 6.0.10
(except where the docstrings of wsstar.addresses say we are stricter)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsstar.identity.addresses import claimed_peer_id, is_multiaddr, is_websocket_star

RSA_ID = "QmWHKoNV8TnVMhedbxHxDDpFFsi5BToKNuAjVKAWbjRGK7"
ED_ID = "12D3KooWEzPUgvaKbeaQ5FfdU8YDXQBGNPpMcPXcwmNNG9m4JLbj"
SECP_ID = "16Uiu2HAkwgZFYCFianpQkmkJ8rhBqCPzUmMJ64uAwSEXANwuipCE"

# (address, js multiaddr parses, mafmt.WebSocketStar matches) as observed with js.
JS_AGREED = [
    ("", True, False),
    ("/", True, False),
    ("/ip4/0.0.0.0", True, False),
    ("foo", False, False),
    ("/foo", False, False),
    (" /ip4/1.2.3.4", False, False),
    ("/ip4/1.2.3.4 ", True, False),
    ("/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/ipfs/0OIl", False, False),
    ("/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/ipfs", False, False),
    ("/ip4/1.2.3.4/tcp/99999/ws", False, False),
    ("/ip4/1.2.3.4/tcp/-1/ws", False, False),
    ("/ip4/1.2.3.4/tcp/+5/ws", True, False),
    ("//ip4/1.2.3.4/tcp/1/ws/", True, False),
    ("/ip4/999.1.1.1/tcp/1", False, False),
    (f"/ip4/1.2.3.4/tcp/9090/ws/p2p-websocket-star/ipfs/{RSA_ID}", True, True),
    (f"/ip4/1.2.3.4/tcp/9090/wss/p2p-websocket-star/p2p/{RSA_ID}", True, True),
    (f"/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/ipfs/{ED_ID}", True, True),
    (f"/ip6/::1/tcp/1/ws/p2p-websocket-star/ipfs/{SECP_ID}", True, True),
    ("/ip6/::1/tcp/9090/ws/p2p-websocket-star", True, True),
    ("/ip4/1.2.3.4/tcp/9090/ws/p2p-websocket-star", True, True),
    ("/dns4/h/tcp/443/wss/p2p-websocket-star", True, True),
    ("/dns4/h/wss/p2p-websocket-star", True, True),
    ("/dns6/h/ws/p2p-websocket-star", True, True),
    ("/dns/h/tcp/80/ws/p2p-websocket-star", True, True),
    ("/dnsaddr/h/ws/p2p-websocket-star", True, True),
    ("/dnsaddr/ipfs/ws/p2p-websocket-star", True, True),
    ("/ip4/1.2.3.4/ws/p2p-websocket-star", True, False),
    ("/ip4/1.2.3.4/tcp/1/p2p-websocket-star", True, False),
    ("/ip4/1.2.3.4/tcp/1/ws", True, False),
    ("/ip4/1.2.3.4/udp/1/ws/p2p-websocket-star", True, False),
    ("/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/p2p-circuit", True, False),
    ("/tcp", False, False),
    ("/ws/ws", True, False),
]


@pytest.mark.parametrize(("address", "parses", "ws_star"), JS_AGREED)
def test_agrees_with_js(address: str, parses: bool, ws_star: bool) -> None:
    assert is_multiaddr(address) is parses
    assert is_websocket_star(address) is ws_star


@pytest.mark.parametrize(
    "address",
    [
        # js accepts these (port "abc" is 0, any base58 is an id); the strict
        # check here wants a numeric port and a real peer id.
        "/ip4/1.2.3.4/tcp/abc/ws/p2p-websocket-star",
        "/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/ipfs/1",
    ],
)
def test_strict_check_is_stricter_than_js_here(address: str) -> None:
    assert is_multiaddr(address)
    assert not is_websocket_star(address)


@pytest.mark.parametrize(
    ("address", "peer_id"),
    [
        (f"/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/ipfs/{RSA_ID}", RSA_ID),
        (f"/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/p2p/{ED_ID}", ED_ID),
        (f"/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/ipfs/{ED_ID}/", ED_ID),
        ("/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star", None),
        ("/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/ipfs", None),
        (f"/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/ipfs/{ED_ID}/p2p-circuit", None),
        ("", None),
    ],
)
def test_claimed_peer_id(address: str, peer_id: str | None) -> None:
    assert claimed_peer_id(address) == peer_id


_pieces = st.sampled_from(
    [
        "/",
        "ip4",
        "ip6",
        "tcp",
        "ws",
        "wss",
        "p2p-websocket-star",
        "ipfs",
        "p2p",
        "dns4",
        "1.2.3.4",
        "::1",
        "9090",
        ED_ID,
    ]
)


@given(st.one_of(st.text(max_size=300), st.lists(_pieces, max_size=14).map("/".join)))
def test_never_raises(text: str) -> None:
    assert is_multiaddr(text) in (True, False)
    assert is_websocket_star(text) in (True, False)
    claimed_peer_id(text)
    if is_websocket_star(text):
        assert is_multiaddr(text)


def test_huge_input_is_cheap_and_refused() -> None:
    huge = "/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/ipfs/" + "a" * 1_000_000
    assert not is_websocket_star(huge + "\x00")
    assert not is_multiaddr("/" * 100_000 + "foo")


def test_codecs_are_loaded_with_the_module() -> None:
    # Loaded lazily they would be a few MiB that the first join adds to a
    # running server (bench churn: RSS growth from a fresh process).
    from multiaddr.codecs import CODEC_CACHE

    assert {"ip4", "ip6", "domain", "uint16be", "cid"} <= set(CODEC_CACHE)
