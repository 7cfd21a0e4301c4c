"""What a server process writes to its log: JSON lines for pipelines, the
client address on every join, dial and departure line, one wording for
every refusal, and no dependency's own lines at debug level unless asked."""

from __future__ import annotations

import json

from tests.support.eio3 import joined
from tests.support.subject import Subject
from tests.support.wait import eventually


async def test_json_lines_carry_event_address_peer_and_client() -> None:
    async with Subject.running("--log-format", "json", "--log-level", "debug") as server:
        client, address = await joined(server.port)
        stranger = address.rsplit("/", 1)[0] + "/QmNobodyJoinedThis"
        reply = await client.call("ss-dial", address, stranger, "dial-1")
        assert reply and reply[0]
        await client.close()

        def records() -> list[dict[str, object]]:
            return [json.loads(line) for line in server.log if line.startswith("{")]

        await eventually(lambda: any(r.get("event") == "left" for r in records()))
        lines = records()
        assert all(line.startswith("{") for line in server.log), server.log
        by_event = {r.get("event"): r for r in lines}
        peer = address.rsplit("/", 1)[1]
        joined_line = by_event["joined"]
        assert joined_line["address"] == address
        assert joined_line["peer"] == peer
        assert joined_line["client"] == "127.0.0.1"
        assert joined_line["level"] == "info"
        assert f"joined {address} from 127.0.0.1" == joined_line["message"]
        assert by_event["dial_refused"]["message"] == (
            f"dial {address} -> {stranger} from 127.0.0.1 refused: {reply[0]}"
        )
        assert by_event["dial_refused"]["client"] == "127.0.0.1"
        assert by_event["dial_refused"]["reason"] == reply[0]
        assert by_event["left"]["client"] == "127.0.0.1"
        assert by_event["left"]["address"] == address
        # Debug is wsstar's own: multiaddr's per-address lines stay out.
        assert not [r for r in lines if not str(r["logger"]).startswith("wsstar")], lines


async def test_text_lines_name_the_client_address() -> None:
    async with Subject.running("--log-level", "info") as server:
        client, address = await joined(server.port)
        # Refusals to one client share a line per 10 s: this is the one.
        assert await client.call("ss-join", "not-a-multiaddr", "") == ["Invalid multiaddr"]
        await client.close()
        await eventually(lambda: any(" left " in line for line in server.log))
    ours = [line for line in server.log if address in line]
    assert ours and all("from 127.0.0.1" in line for line in ours), ours
    # Worded as every refusal is: what, from whom, refused, why.
    assert any(
        line.endswith("join not-a-multiaddr from 127.0.0.1 refused: Invalid multiaddr")
        for line in server.log
    ), server.log


async def test_dependencies_log_only_when_asked() -> None:
    async with Subject.running(
        "--log-format", "json", "--log-level", "debug", "--log-dependencies"
    ) as server:
        client, _ = await joined(server.port)
        await client.close()

        def loggers() -> set[str]:
            return {
                str(json.loads(line)["logger"]).split(".")[0]
                for line in server.log
                if line.startswith("{")
            }

        # multiaddr writes debug lines for every address it parses.
        await eventually(lambda: "multiaddr" in loggers())
