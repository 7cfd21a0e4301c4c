"""The published client over wss, against a server with a self-signed
certificate, trusted the way README says Node.js nodes must trust it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.harness import NodeAgent
from tests.support.subject import Subject
from tests.support.tls import self_signed

MIB = 1024 * 1024


@pytest.mark.wsstar_only("the server is started with wsstar's TLS options")
async def test_nodes_trusting_the_certificate_meet_and_relay_over_wss(tmp_path: Path) -> None:
    credentials = self_signed(tmp_path)
    async with Subject.running("--cert", str(credentials.cert), "--key", str(credentials.key)) as (
        server
    ):
        star = f"/ip4/127.0.0.1/tcp/{server.port}/wss/p2p-websocket-star"
        # engine.io-client passes rejectUnauthorized: true to ws itself, so
        # NODE_TLS_REJECT_UNAUTHORIZED=0 does not reach it...
        careless = await NodeAgent.start({"NODE_TLS_REJECT_UNAUTHORIZED": "0"})
        try:
            await careless.request("create", name="c", keyType="ed25519")
            refused = await careless.try_request("listen", name="c", server=star)
            assert refused["ok"] is False and refused["error"] == "websocket error", refused
        finally:
            await careless.stop()
        # ... while an extra CA does.
        agent = await NodeAgent.start({"NODE_EXTRA_CA_CERTS": str(credentials.cert)})
        try:
            addresses = {}
            for name in ("a", "b"):
                await agent.request("create", name=name, keyType="ed25519")
                addresses[name] = (await agent.request("listen", name=name, server=star))["addr"]
            assert addresses["a"].startswith(star + "/ipfs/")
            seen = await agent.next_event("peer", lambda e: e["node"] == "b")
            assert seen["addr"] == addresses["a"]
            echo = await agent.request(
                "dial_echo", name="b", addr=addresses["a"], bytes=MIB, timeout=60
            )
            assert echo["bytes"] == MIB
            assert echo["received"] == echo["sent"]
        finally:
            await agent.stop()
        assert agent.uncaught() == [], agent.uncaught()
