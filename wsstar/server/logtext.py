"""Log lines that clients cannot forge or flood.

Addresses, dial ids and event names in log lines are chosen by clients: a
``\\n`` in one would start a fake line.  And a client that keeps sending
requests the server refuses would otherwise write a line for each.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
from collections.abc import Callable

from wsstar.wire.reasons import shorten

#: Longest client-chosen text put in a log line: room for a whole joined
#: address (``/dns4/<name>/tcp/443/wss/p2p-websocket-star/ipfs/<id>`` is
#: 100-130 characters), whose peer id is the part worth reading.
LOGGED = 160

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")


def printable(value: object, limit: int = LOGGED) -> str:
    """``value`` for a log line: control characters escaped, cut to ``limit``."""
    text = value if isinstance(value, str) else repr(value)
    return shorten(_UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text), limit)


class LogThrottle:
    """At most one line per key (a client address) per interval; the lines
    held back are counted and reported once the interval is over."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self._clock = clock
        #: key -> (end of its interval, lines held back in it)
        self._windows: dict[str, tuple[float, int]] = {}

    def allow(self, key: str) -> bool:
        """Whether to write this line: the first one of its interval."""
        window = self._windows.get(key)
        if window is None:
            self._windows[key] = (self._clock() + self.interval, 0)
            return True
        self._windows[key] = (window[0], window[1] + 1)
        return False

    def flush(self) -> list[tuple[str, int]]:
        """(key, lines held back) for every interval that is over."""
        now = self._clock()
        over = [(key, held) for key, (end, held) in self._windows.items() if end <= now]
        for key, _ in over:
            del self._windows[key]
        return [(key, held) for key, held in over if held]


#: The structured fields a log line may carry (``extra=`` of the call).
FIELDS = ("event", "address", "client", "reason")


def fields(
    event: str, client: str, address: object = None, reason: str | None = None
) -> dict[str, str]:
    """The ``extra`` of a join, dial, departure or refusal line: what
    ``--log-format json`` writes as fields beside the message."""
    out = {"event": event, "client": client}
    if address is not None:
        out["address"] = printable(address)
    if reason is not None:
        out["reason"] = reason
    return out


def peer_of(address: str) -> str | None:
    """The peer id at the end of a joined multiaddr, if it has one."""
    for marker in ("/ipfs/", "/p2p/"):
        if marker in address:
            return address.rsplit(marker, 1)[1].split("/", 1)[0] or None
    return None


class JsonLines(logging.Formatter):
    """One JSON object per line, for log pipelines: time, level, logger,
    message, and the structured fields of the line where it has them."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                out[key] = value
        address = out.get("address")
        if isinstance(address, str):
            peer = peer_of(address)
            if peer is not None:
                out["peer"] = peer
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)
