"""Every option of the reference's command line works here with its meaning.

The list is read from the installed reference (its ``src/bin.js``), so an
option README does not cover cannot slip by: each ``argv.<name>`` flag and
each ``process.env.<NAME>`` variable must be known below and must set the
same thing here, in each of the forms minimist accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.interop.harness import NODE_MODULES
from wsstar.server.cli import parse_config
from wsstar.server.config import ServerConfig

BIN_JS = NODE_MODULES / "libp2p-websocket-star-rendezvous" / "src" / "bin.js"
#: ``name: argv.a || argv.b || process.env.X || default`` and the negated
#: ``name: !(argv.a || process.env.X)`` of the switches.
ENTRY = re.compile(r"^\s*(\w+): (!?)\(?((?:argv\.\w+|process\.env\.\w+)(?: \|\| [^,]+)*)", re.M)


@dataclass(frozen=True)
class Meaning:
    read: Callable[[ServerConfig], Any]
    #: For a valued option: what to give it and the value that results.
    sample: str | None = None
    expected: Any = None
    #: Options that must come with it (TLS needs both files).
    with_: tuple[str, ...] = ()


MEANINGS: dict[str, Meaning] = {
    "port": Meaning(lambda c: c.port, "9191", 9191),
    "host": Meaning(lambda c: c.host, "127.0.0.5", "127.0.0.5"),
    "key": Meaning(lambda c: c.tls_key, "k.pem", "k.pem", ("--cert", "c.pem")),
    "cert": Meaning(lambda c: c.tls_cert, "c.pem", "c.pem", ("--key", "k.pem")),
    "pfx": Meaning(lambda c: c.tls_pfx, "s.pfx", "s.pfx"),
    "passphrase": Meaning(lambda c: c.tls_passphrase, "secret", "secret"),
    # The switches: the reference turns each *off* when given.
    "cryptoChallenge": Meaning(lambda c: c.rules.crypto_challenge),
    "strictMultiaddr": Meaning(lambda c: c.rules.strict_multiaddr),
    "metrics": Meaning(lambda c: c.metrics),
}


def reference_options() -> list[tuple[str, bool, list[str], list[str]]]:
    """(option, is a switch, flag names, environment names) from bin.js."""
    if not BIN_JS.is_file():
        pytest.fail(f"{BIN_JS} is missing: run scripts/test (it runs npm ci)")
    found = []
    for name, negated, body in ENTRY.findall(BIN_JS.read_text()):
        flags = re.findall(r"argv\.(\w+)", body)
        envs = re.findall(r"process\.env\.(\w+)", body)
        found.append((name, negated == "!", flags, envs))
    return found


def test_the_reference_list_was_read() -> None:
    names = {name for name, *_ in reference_options()}
    assert names == set(MEANINGS), "an option of the reference is not covered here"


@pytest.mark.parametrize("option", sorted(MEANINGS))
def test_each_reference_option_means_the_same(option: str) -> None:
    [(_, switch, flags, envs)] = [o for o in reference_options() if o[0] == option]
    meaning = MEANINGS[option]
    assert flags and envs
    for flag in flags:
        dash = "-" if len(flag) == 1 else "--"
        if switch:
            default = meaning.read(parse_config([], {}))
            assert default is True, option
            for argv in ([dash + flag], [f"{dash}{flag}=true"], [dash + flag, "true"]):
                assert meaning.read(parse_config(argv, {})) is False, argv
        else:
            assert meaning.sample is not None
            forms = [[dash + flag, meaning.sample]]
            if dash == "--":
                forms.append([f"--{flag}={meaning.sample}"])
            for argv in forms:
                config = parse_config([*argv, *meaning.with_], {})
                assert meaning.read(config) == meaning.expected, argv
    for env in envs:
        if switch:
            assert meaning.read(parse_config([], {env: "1"})) is False, env
        else:
            assert meaning.sample is not None
            config = parse_config(list(meaning.with_), {env: meaning.sample})
            assert meaning.read(config) == meaning.expected, env
