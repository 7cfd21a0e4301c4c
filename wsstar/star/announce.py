"""When each joined address is re-announced (``ws-peer``).

The reference starts one timer per joined address, each sending to every other
peer every 10 s: N² messages per interval, out of phase, with no limit.  Here
the whole schedule is one object driven by a single ticker, so that how often
and in what order addresses are re-announced is decided in exactly one place.

The schedule is pure: it is given the time and says which addresses are due.
"""

from __future__ import annotations

import math
from collections import deque

from wsstar.directory import SocketId


def rounds_period(interval: float) -> float:
    """Seconds between the batches that carry the rounds' share: once a
    second, or a quarter of a short interval.  They are repeats, in no hurry,
    and each batch costs a write to every socket."""
    return min(1.0, interval / 4)


class AnnouncementSchedule:
    """A ring of joined addresses and a cursor that walks it once per *round*.

    A round is ``interval`` seconds while that keeps each socket under
    ``budget`` re-announcements per interval; with more peers than that it
    stretches to ``interval * (peers - 1) / budget``.  So no client is flooded
    with every peer every interval, and the server's work per interval grows
    with N rather than N².  ``budget=None`` keeps the reference's rate: every
    address once per interval.

    The cursor advances in proportion to elapsed time, so announcements are
    spread evenly over the round whatever the join pattern, and a change in
    the number of peers changes the pace at once.  A newly added address goes
    just behind the cursor: its first re-announcement comes about one round
    after its join (the immediate announcement at join time is the join
    rule's business, not the schedule's).
    """

    def __init__(self, interval: float, budget: int | None = None) -> None:
        if interval <= 0:
            raise ValueError("announce interval must be positive")
        if budget is not None and budget <= 0:
            raise ValueError("announce budget must be positive (or None for unlimited)")
        self.interval = interval
        self.budget = budget
        # Ring entries are (address, generation); an entry whose generation
        # is not the address's current one was removed or re-added, and is
        # dropped when the cursor reaches it.  Add and remove stay O(1).
        self._ring: deque[tuple[str, int]] = deque()
        self._current: dict[str, int] = {}
        self._generation = 0
        self._credit = 0.0
        self._last: float | None = None

    def __len__(self) -> int:
        return len(self._current)

    def round_length(self) -> float:
        """Seconds in which every joined address is re-announced once."""
        others = len(self._current) - 1
        if self.budget is None or others <= self.budget:
            return self.interval
        return self.interval * others / self.budget

    def add(self, address: str, now: float) -> None:
        """(Re)start the address's cycle: a re-join puts it at the back again."""
        self._generation += 1
        self._current[address] = self._generation
        self._ring.append((address, self._generation))
        if self._last is None:
            self._last = now

    def remove(self, address: str) -> None:
        """Stop announcing the address (left, or its last owner disconnected)."""
        self._current.pop(address, None)
        if len(self._ring) > 64 and len(self._ring) > 2 * len(self._current):
            # Churn leaves stale entries behind; drop them once they dominate
            # so memory follows the number of joined addresses.
            self._ring = deque(e for e in self._ring if self._current.get(e[0]) == e[1])

    def pop_due(self, now: float) -> list[str]:
        """Addresses to re-announce now: as many as the time since the last
        call is worth at the current pace."""
        last, self._last = self._last, now
        if last is None or not self._current:
            self._credit = 0.0
            return []
        elapsed = max(0.0, now - last)
        # At most one full round per call: a stalled ticker skips the missed
        # rounds instead of bursting them all at once.
        self._credit = min(
            self._credit + len(self._current) * elapsed / self.round_length(),
            float(len(self._current)),
        )
        due: list[str] = []
        ring, current = self._ring, self._current
        # The epsilon keeps float rounding from postponing the last address
        # of a round to the next tick.
        while self._credit > 1.0 - 1e-9 and ring:
            address, generation = ring.popleft()
            if current.get(address) != generation:
                continue
            ring.append((address, generation))
            due.append(address)
            self._credit -= 1.0
        return due


class AnnouncementBudget:
    """How many immediate announcements each socket may still receive.

    A join is announced at once to every joined socket; in a burst of joins
    (a swarm forming, everyone reconnecting after a restart) that is N
    announcements to each of N sockets, N² in all, which no server or client
    keeps up with at 10,000 peers.  Each socket therefore has a token bucket
    holding at most ``budget`` announcements and refilled at ``budget`` per
    ``interval``: a steady trickle of joins (up to ``budget / interval`` per
    second) is announced to everyone at once as before, while a burst is
    sampled, the newest first.  Nothing is lost for good: every address is
    re-announced each round, and the newcomers of a burst learn of the others
    from their join ack and early replay.

    A socket whose bucket is nearly empty waits until it holds a tenth of the
    budget (or all it is offered) before it is given any: in a burst it then
    gets one write a second, not one per batch of joins.

    The rounds' share of a period is cut by what the socket heard in it (its
    joins and its replay), so that in a burst it hears about ``budget`` per
    interval in all rather than twice that: the joins are news, the rounds'
    addresses come round again.  Outside a burst the joins heard are few and
    nothing is cut.  What is left after a socket heard joins is not sent at
    all when it is less than half a batch: the socket was written to in the
    period already, and a write for a repeat or two costs the server and
    the client as much as a write of many.

    A socket may be *held* until its early replay (:meth:`hold`): it is
    then given nothing, and its full bucket goes to the replay.

    Pure: it is given the time, and knows sockets only by their id.
    """

    def __init__(self, budget: int, interval: float) -> None:
        if budget <= 0 or interval <= 0:
            raise ValueError("announcement budget and interval must be positive")
        self.capacity = float(budget)
        self.rate = budget / interval
        self.batch = max(1, budget // 10)
        #: What a socket may hear in one rounds' period, joins included.  One
        #: more than the budget's pace: the rounds' share of a period is that
        #: pace give or take one, and an idle socket must get all of it.
        self.per_period = math.ceil(self.rate * rounds_period(interval)) + 1
        #: Socket → (tokens, when they were counted).
        self._buckets: dict[SocketId, tuple[float, float]] = {}
        #: Socket → announcements it heard since the period began.
        self._heard: dict[SocketId, int] = {}
        #: Socket → when its early replay is due, while it is held.
        self._held: dict[SocketId, float] = {}

    def hold(self, sid: SocketId, until: float) -> None:
        """Give ``sid`` nothing before ``until`` (or its replay, if sooner)."""
        self._held[sid] = until

    def _is_held(self, sid: SocketId, now: float) -> bool:
        until = self._held.get(sid)
        if until is None:
            return False
        if now < until:
            return True
        del self._held[sid]
        return False

    def _tokens(self, sid: SocketId, now: float) -> float:
        held = self._buckets.get(sid)
        if held is None:
            return self.capacity  # a newcomer starts with a full bucket
        tokens, then = held
        return min(self.capacity, tokens + (now - then) * self.rate)

    def take(self, sid: SocketId, wanted: int, now: float) -> int:
        """Grant up to ``wanted`` announcements to ``sid`` now; returns how many."""
        if wanted <= 0 or self._is_held(sid, now):
            return 0  # a round-only batch (nothing to count), or held
        tokens = self._tokens(sid, now)
        # The epsilon keeps float rounding from costing a whole announcement.
        granted = min(wanted, int(tokens + 1e-9))
        if granted < min(wanted, self.batch):
            return 0
        self._buckets[sid] = (tokens - granted, now)
        self._heard[sid] = self._heard.get(sid, 0) + granted
        return granted

    def spend(self, sid: SocketId, count: int, now: float) -> None:
        """Count ``count`` announcements ``sid`` received anyway (its early
        replay, itself bounded by the budget) against what it may receive next;
        a held socket's replay is what it was held for."""
        self._held.pop(sid, None)
        self._buckets[sid] = (max(0.0, self._tokens(sid, now) - count), now)
        self._heard[sid] = self._heard.get(sid, 0) + count

    def rounds_share(self, sid: SocketId, offered: int, now: float) -> int:
        """How many of the ``offered`` re-announcements of this period
        ``sid`` is sent: what the joins it heard in the period left."""
        if self._is_held(sid, now):
            return 0
        heard = self._heard.get(sid, 0)
        share = max(0, min(offered, self.per_period - heard))
        if heard and 2 * share < min(offered, self.batch):
            # What the joins left is a repeat or two: in a burst a write of
            # its own each period, for addresses that come round again.
            return 0
        return share

    def end_period(self) -> None:
        """The rounds' share of a period has gone out: count afresh."""
        self._heard.clear()

    def forget(self, sid: SocketId) -> None:
        """The socket is gone."""
        self._buckets.pop(sid, None)
        self._heard.pop(sid, None)
        self._held.pop(sid, None)
