"""When each joined address is re-announced (``ws-peer``).

The reference starts one timer per joined address, each sending to every other
peer every 10 s.  Here the whole schedule is one object driven by a single
ticker, so that how often and in what order addresses are re-announced is
decided in exactly one place and can change (batching, per-socket budgets)
without touching the join rules or the I/O layer.

The schedule is pure: it is given the time and says which addresses are due.
"""

from __future__ import annotations

import heapq


class AnnouncementSchedule:
    """A re-announcement every ``interval`` seconds per address, first one
    ``interval`` after the join (the immediate announcement at join time is the
    join rule's business, not the schedule's)."""

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError("announce interval must be positive")
        self.interval = interval
        # Heap of (due time, sequence, address); entries of removed or
        # re-added addresses stay in the heap and are skipped when popped,
        # which keeps add and remove O(log n) and O(1).
        self._heap: list[tuple[float, int, str]] = []
        self._current: dict[str, int] = {}
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, address: object) -> bool:
        return address in self._current

    def add(self, address: str, now: float) -> None:
        """(Re)start the address's cycle: a re-join restarts it, like a new timer."""
        self._sequence += 1
        self._current[address] = self._sequence
        heapq.heappush(self._heap, (now + self.interval, self._sequence, address))

    def remove(self, address: str) -> None:
        """Stop announcing the address (left, or its last owner disconnected)."""
        self._current.pop(address, None)
        self._compact_if_mostly_stale()

    def next_due(self) -> float | None:
        """When the earliest live entry is due, for a ticker that sleeps until then."""
        self._drop_stale_head()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[str]:
        """Addresses due at ``now``, each rescheduled one interval after its due time.

        Rescheduling from the due time rather than from ``now`` keeps a slow
        tick from drifting every address later and later.
        """
        due: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, sequence, address = heapq.heappop(heap)
            if self._current.get(address) != sequence:
                continue
            due.append(address)
            next_time = when + self.interval
            if next_time <= now:
                # The ticker stalled for more than an interval: skip the
                # missed rounds instead of bursting them all at once.
                next_time = now + self.interval
            heapq.heappush(heap, (next_time, sequence, address))
        return due

    def _drop_stale_head(self) -> None:
        heap = self._heap
        while heap and self._current.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)

    def _compact_if_mostly_stale(self) -> None:
        # Churn leaves stale heap entries behind; rebuild once they dominate
        # so memory follows the number of joined addresses.
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._current):
            self._heap = [e for e in self._heap if self._current.get(e[2]) == e[1]]
            heapq.heapify(self._heap)
