"""The private-swarm allow list: which peer ids may join.

One peer id per line; blank lines and ``#`` comments are ignored.  The file is
read at start-up and again on SIGHUP; a file that does not parse is reported
with its line number and, on reload, leaves the previous list in force.
"""

from __future__ import annotations

from pathlib import Path

from wsstar.errors import ConfigError
from wsstar.identity.keys import BASE58_ALPHABET


def load_allowed_peers(path: str | Path) -> frozenset[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the allow list {path}: {exc}") from exc
    peers = set()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not set(entry) <= BASE58_ALPHABET:
            raise ConfigError(f"{path}:{number}: not a base58 peer id: {entry[:60]!r}")
        peers.add(entry)
    return frozenset(peers)
