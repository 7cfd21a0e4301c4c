"""Full garbage collections paced by what they cost.

CPython collects its oldest generation whenever a quarter more objects have
survived into it since the last time, and each such collection walks every
object the process holds.  A server gaining thousands of connections a
second (a swarm forming, everyone reconnecting after a restart) grows by a
quarter every second or so: at 10,000 peers those walks were about a third
of the server's CPU.  For as long as the server runs, the oldest generation is
collected here instead, by the same growth rule, but no sooner after the last
collection than :data:`SPACING` times what that one took, so that they cost
at most about a twentieth of the process's time.  The young generations are
left to CPython: their collections are small whatever the heap.

The heap is measured by :func:`sys.getallocatedblocks` (cheap, and close to
the count of long-lived objects CPython's rule uses).  Cyclic garbage that
grew old waits a little longer to be freed; everything else is freed as
before, by reference counting.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time

#: How much larger the heap must be than after the last full collection
#: before the next: CPython's own rule.
GROWTH = 1.25
#: The least time between two full collections, in multiples of what the
#: last one took.
SPACING = 20.0
#: Seconds between looks at the heap.
CHECK_INTERVAL = 1.0
#: A threshold for the oldest generation that is never reached: CPython's
#: automatic full collections are off while the pacer runs.
_NEVER = 2**31 - 1


class FullCollections:
    """When the next full collection is due.  Pure: it is given the heap's
    size and the time."""

    def __init__(self) -> None:
        self._size_after = 0
        self._next_allowed = 0.0

    def due(self, size: int, now: float) -> bool:
        return size >= self._size_after * GROWTH and now >= self._next_allowed

    def collected(self, size: int, now: float, took: float) -> None:
        """A full collection that took ``took`` seconds of CPU left ``size``."""
        self._size_after = size
        self._next_allowed = now + SPACING * took


async def pace_full_collections() -> None:
    """Collect the oldest generation by :class:`FullCollections` until
    cancelled, then give the task back to CPython."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, _NEVER)
    pacing = FullCollections()
    try:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            if pacing.due(sys.getallocatedblocks(), time.monotonic()):
                started = time.thread_time()
                gc.collect()
                took = time.thread_time() - started
                pacing.collected(sys.getallocatedblocks(), time.monotonic(), took)
    finally:
        gc.set_threshold(young, middle, old)
