"""Client text in log lines, and refusals summed up per address."""

from __future__ import annotations

import json
import logging

from wsstar.server.logtext import JsonLines, LogThrottle, fields, peer_of, printable


def test_client_text_cannot_start_a_line_of_its_own() -> None:
    forged = "/ip4/1.2.3.4/ipfs/QmA\n2026-12-01 INFO wsstar: joined /x from 6.6.6.6"
    assert "\n" not in printable(forged, 200)
    assert printable("a\\b\x1b[31m\u0085") == "a\\x5cb\\x1b[31m\\x85"
    assert printable("x" * 100, 10) == "x" * 10 + "…"
    assert printable(["not", "text"]) == "['not', 'text']"


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_address_per_interval_and_a_count_of_the_rest() -> None:
    clock = Clock()
    throttle = LogThrottle(10.0, clock)
    assert throttle.allow("a") is True
    assert [throttle.allow("a") for _ in range(500)] == [False] * 500
    assert throttle.allow("b") is True
    clock.now = 5.0
    assert throttle.flush() == []
    clock.now = 10.0
    assert throttle.flush() == [("a", 500)]  # b had nothing held back
    assert throttle.allow("a") is True  # a new interval


def test_json_lines_have_the_fields_of_the_call() -> None:
    address = "/ip4/1.2.3.4/tcp/9090/ws/p2p-websocket-star/ipfs/QmPeer"
    record = logging.LogRecord("wsstar", logging.INFO, __file__, 1, "joined %s", (address,), None)
    record.__dict__.update(fields("joined", "10.0.0.7", address))
    line = json.loads(JsonLines().format(record))
    assert {k: line[k] for k in ("level", "logger", "message", "event", "client", "peer")} == {
        "level": "info",
        "logger": "wsstar",
        "message": f"joined {address}",
        "event": "joined",
        "client": "10.0.0.7",
        "peer": "QmPeer",
    }
    assert line["address"] == address
    assert line["time"].endswith("+00:00")


def test_a_json_line_without_fields_and_a_forged_newline() -> None:
    record = logging.LogRecord("wsstar", logging.INFO, __file__, 1, "x\ny", None, None)
    text = JsonLines().format(record)
    assert "\n" not in text
    assert "event" not in json.loads(text)


def test_peer_of() -> None:
    assert peer_of("/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star/p2p/12D3KooW") == "12D3KooW"
    assert peer_of("/ip4/1.2.3.4/tcp/1/ws/p2p-websocket-star") is None
