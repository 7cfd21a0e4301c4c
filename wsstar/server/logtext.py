"""Log lines that clients cannot forge or flood.

Addresses, dial ids and event names in log lines are chosen by clients: a
``\\n`` in one would start a fake line.  And a client that keeps sending
requests the server refuses would otherwise write a line for each.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from wsstar.wire.reasons import shorten

#: Longest client-chosen text put in a log line.
LOGGED = 80

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
