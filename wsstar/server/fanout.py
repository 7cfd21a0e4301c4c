"""Sending ``ws-peer`` announcements to every joined socket, cheaply.

Announcements are most of what a busy rendezvous server sends: every join is
announced to every joined socket, and every joined address is re-announced
each round.  Sent one by one, each costs a queue operation, a writer task
wake-up and a system call per recipient, and a burst of N joins costs N² of
them.  Here announcements made close together are gathered and go out
together: their websocket frames are built once, and each recipient gets all
of them in a single write of the very same bytes.

The wait before a gathered batch goes out grows with the size of the swarm
(:data:`DELAY_PER_PEER`, at most :data:`MAX_DELAY`), so a flush costs at most
a fixed share of the process however often peers join, while a small server
still announces within milliseconds.  The whole swarm, not this node's
sockets: each socket then gets batches as often as on one server, and the
nodes of a cluster together write no more than one server would (with the
delay set by their own sockets, two nodes would each flush twice as often,
and the pair would spend twice the CPU).

Each socket's immediate announcements are drawn from its
:class:`~wsstar.star.announce.AnnouncementBudget`: a burst of joins costs each
socket at most its budget, not one announcement per join.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from wsstar.directory import Owner, PeerDirectory, SocketId
from wsstar.server.engineio import Session, text_frame
from wsstar.star.announce import AnnouncementBudget
from wsstar.star.effects import Announce
from wsstar.wire import codec

#: Seconds of gathering per joined peer of the swarm before a batch goes out.
DELAY_PER_PEER = 20e-6
#: The longest a join waits to be announced; well inside the one second
#: within which a new peer must be known to everyone.
MAX_DELAY = 0.25
#: Packets queued for a client beyond which announcements to it are skipped.
MAX_QUEUED_PACKETS = 64
#: Unsent bytes in a client's transport beyond which announcements to it are
#: skipped.
MAX_BUFFERED_BYTES = 1 << 16


class AnnouncementFanout:
    """Gathers :class:`~wsstar.effects.Announce` effects and sends them in batches.

    A client that is far behind (:data:`MAX_QUEUED_PACKETS`,
    :data:`MAX_BUFFERED_BYTES`) is skipped: every address is announced again
    next round, so it loses nothing it will not hear again, and queueing for
    it anyway is how an overloaded server runs out of memory.
    """

    def __init__(
        self,
        directory: PeerDirectory,
        session_of: Callable[[SocketId], Session | None],
        budget: AnnouncementBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        quote: Callable[[str], str] = codec.quote,
    ) -> None:
        """``session_of`` finds the session of one of this node's sockets;
        without a ``budget`` every join is announced to everyone (the
        reference's way); ``quote`` gives an address's JSON literal (the
        rules keep them for joined addresses)."""
        self._quote = quote
        self._directory = directory
        self._session_of = session_of
        self._budget = budget
        self._clock = clock
        #: Joins' announcements (address → who not to tell), sent after a
        #: short delay.
        self._joins: dict[str, Owner | None] = {}
        #: The rounds' share, sent by the ticker's :meth:`flush` with
        #: ``rounds``: it is no hurry, and sent with every batch of joins it
        #: would cost a write to every socket each time.
        self._rounds: dict[str, Owner | None] = {}
        self._timer: asyncio.TimerHandle | None = None
        #: Writes skipped because their client was too far behind.
        self.skipped = 0
        #: Announcements left to the rounds because their socket's budget
        #: was spent.
        self.deferred = 0

    def add(self, announcement: Announce) -> None:
        """Send ``announcement`` with the next batch."""
        address = announcement.address
        if not announcement.join:
            self._rounds[address] = announcement.skip
            return
        self._joins[address] = announcement.skip
        if self._timer is None:
            delay = min(MAX_DELAY, DELAY_PER_PEER * len(self._directory))
            self._timer = asyncio.get_running_loop().call_later(delay, self.flush)

    def close(self) -> None:
        """Drop what is pending (the server is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._joins.clear()
        self._rounds.clear()

    def flush(self, rounds: bool = False) -> None:
        """Send the joins gathered so far, and with ``rounds`` the rounds' share."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        budget = self._budget
        try:
            self._flush(rounds)
        finally:
            if rounds and budget is not None:
                budget.end_period()

    def _flush(self, rounds: bool) -> None:
        joins, self._joins = self._joins, {}
        pending = [(address, skip, True) for address, skip in joins.items()]
        if rounds:
            # Announced by a join and its round before a flush: once is enough.
            pending += [(a, skip, False) for a, skip in self._rounds.items() if a not in joins]
            self._rounds = {}
        directory = self._directory
        # An address that left before its announcement went out is not
        # announced: nobody could reach it.  Joins come first, so that a
        # socket short of budget drops the oldest of them and the end of
        # the rounds' share: every write is then one run of the list.
        live = [item for item in pending if directory.owner(item[0]) is not None]
        if not live:
            return
        join_count = sum(join for _, _, join in live)
        round_count = len(live) - join_count
        quote = self._quote
        texts = [codec.peer_announcement(quote(address)) for address, _, _ in live]
        frames = [text_frame("4" + text) for text in texts]
        runs: dict[tuple[int, int], bytes] = {}
        # Only this node's sockets are written to; a skipped owner elsewhere
        # is another node's business.
        node = directory.node
        skips = {skip.socket for _, skip, _ in live if skip is not None and skip.node == node}
        budget, now = self._budget, self._clock()
        for sid in directory.local_sockets():
            if sid not in skips:
                if budget is None:
                    start, end = 0, len(live)
                else:
                    granted = budget.take(sid, join_count, now)
                    share = budget.rounds_share(sid, round_count, now)
                    self.deferred += len(live) - granted - share
                    start, end = join_count - granted, join_count + share
                if start < end:
                    frame_bytes = runs.get((start, end))
                    if frame_bytes is None:
                        frame_bytes = runs[start, end] = b"".join(frames[start:end])
                    self._send(sid, [frame_bytes], texts[start:end])
                continue
            mine_joins: list[int] = []
            mine_rounds: list[int] = []
            for i, (_, skip, join) in enumerate(live):
                if skip is None or skip.socket != sid or skip.node != node:
                    (mine_joins if join else mine_rounds).append(i)
            if budget is None:
                chosen = mine_joins + mine_rounds
            else:
                granted = budget.take(sid, len(mine_joins), now)
                share = budget.rounds_share(sid, len(mine_rounds), now)
                self.deferred += len(mine_joins) + len(mine_rounds) - granted - share
                chosen = mine_joins[len(mine_joins) - granted :] + mine_rounds[:share]
            if chosen:
                frame_bytes = b"".join(frames[i] for i in chosen)
                self._send(sid, [frame_bytes], [texts[i] for i in chosen])

    def hold(self, sid: SocketId, seconds: float) -> None:
        """Send ``sid`` nothing for ``seconds``, until its replay (with a budget)."""
        if self._budget is not None:
            self._budget.hold(sid, self._clock() + seconds)

    def replay(self, sid: SocketId, session: Session, addresses: tuple[str, ...]) -> None:
        """Announce ``addresses`` to one session, in one write, counted
        against its budget."""
        if self._budget is not None:
            self._budget.spend(sid, len(addresses), self._clock())
        quote = self._quote
        texts = [codec.peer_announcement(quote(address)) for address in addresses]
        self._write(session, [b"".join(text_frame("4" + text) for text in texts)], texts)

    def forget(self, sid: SocketId) -> None:
        """The socket is gone."""
        if self._budget is not None:
            self._budget.forget(sid)

    def _send(self, sid: SocketId, frames: list[bytes], texts: list[str]) -> None:
        session = self._session_of(sid)
        if session is not None:
            self._write(session, frames, texts)

    def _write(self, session: Session, frames: list[bytes], texts: list[str]) -> None:
        if (
            session.queued_packets() >= MAX_QUEUED_PACKETS
            or session.buffered_bytes() > MAX_BUFFERED_BYTES
        ):
            self.skipped += 1
            return
        if not session.write_frames(frames):
            session.send_texts(texts)
