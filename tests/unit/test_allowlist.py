from pathlib import Path

import pytest

from tests.support.identity import Identity
from tests.unit.test_rules import PORT, Clock, join_, make
from wsstar.errors import ConfigError
from wsstar.identity.allowlist import load_allowed_peers
from wsstar.wire.reasons import Reason


def test_file_format(tmp_path: Path) -> None:
    path = tmp_path / "peers"
    path.write_text("# the swarm\nQmA\n\n  12D3KooWB  # laptop\n")
    assert load_allowed_peers(path) == frozenset({"QmA", "12D3KooWB"})
    path.write_text("QmA\nnot/an id\n")
    with pytest.raises(ConfigError, match=":2: not a base58 peer id"):
        load_allowed_peers(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_allowed_peers(tmp_path / "missing")


def test_only_listed_peers_join() -> None:
    r = make(Clock())
    allowed, other = Identity.generate(), Identity.generate()
    r.allowed_peers = frozenset({allowed.peer_id})
    r.connect("s")
    assert join_(r, "s", other.address(PORT), other.marshalled_public_key.hex())[0] == (
        Reason.PEER_NOT_ALLOWED.value,
    )
    addr = allowed.address(PORT)
    (_, nonce), _ = join_(r, "s", addr, allowed.marshalled_public_key.hex())
    # Removed from the list between challenge and answer: refused too.
    r.allowed_peers = frozenset()
    assert join_(r, "s", addr, allowed.sign_hex(str(nonce)))[0] == (Reason.PEER_NOT_ALLOWED.value,)
