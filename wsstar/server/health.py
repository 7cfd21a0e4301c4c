"""``wsstar-server healthcheck``: is this server up and answering?

A container's health check runs as a separate process that does not see the
server's command line, so a check that guesses the port from ``PORT`` fails
when the port came from a flag, speaks http to an https server, and under
``--network host`` can reach some other server on the same port and call it
healthy.  The server therefore writes where it listens and its instance id
into ``--state-file`` once it is listening; the check reads that file,
asks that URL's ``/health`` and accepts only an answer carrying the same
instance id.  Without a state file the check follows its own flags and
environment, read exactly as the server reads them.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from wsstar.server.config import ServerConfig

#: Seconds the check waits for the server's answer.
CHECK_TIMEOUT = 4.0

#: A wildcard bind address, and the loopback address that reaches it.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@dataclass(frozen=True, slots=True)
class Listening:
    """What a running server writes into its state file."""

    scheme: str
    host: str
    port: int
    instance: str

    def health_url(self) -> str:
        host = _LOOPBACK.get(self.host, self.host)
        return f"{self.scheme}://{'[' + host + ']' if ':' in host else host}:{self.port}/health"


def write_state(path: str, state: Listening) -> None:
    """Replace ``path`` at once, so a check never reads half of it."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".wsstar-state-")
    with os.fdopen(fd, "w") as out:
        json.dump(
            {
                "scheme": state.scheme,
                "host": state.host,
                "port": state.port,
                "instance": state.instance,
            },
            out,
        )
    os.replace(temporary, path)


def remove_state(path: str, instance: str) -> None:
    """Remove the state file if it is still this server's."""
    state = read_state(path)
    if state is not None and state.instance == instance:
        with contextlib.suppress(OSError):
            os.unlink(path)


def read_state(path: str) -> Listening | None:
    try:
        data = json.loads(Path(path).read_text())
        return Listening(
            str(data["scheme"]), str(data["host"]), int(data["port"]), str(data["instance"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check(expected: Listening) -> str | None:
    """None when the server of ``expected`` answers healthy; else why not."""
    url = expected.health_url()
    context = None
    if url.startswith("https:"):
        # The server's own certificate is checked by its clients; here only
        # whether it answers matters, and a self-signed one must pass.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT, context=context) as reply:
            body = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return f"{url} answered HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{url}: {getattr(exc, 'reason', None) or exc}"
    if not isinstance(body, dict) or body.get("status") != "ok":
        return f"{url} did not answer a wsstar health report"
    if expected.instance and body.get("instance") != expected.instance:
        return f"{url} is another server than the one that wrote the state file"
    return None


def main(config: ServerConfig) -> int:
    """Exit status 0 when healthy, 1 when not (what Docker's HEALTHCHECK reads)."""
    if config.state_file:
        expected = read_state(config.state_file)
        if expected is None:
            print(f"unhealthy: no server state in {config.state_file} (not listening yet?)")
            return 1
    else:
        expected = Listening(config.scheme, config.host, config.port, "")
    problem = check(expected)
    if problem is not None:
        print(f"unhealthy: {problem}")
        return 1
    print(f"healthy: {expected.health_url()}")
    return 0
