"""Sending ``ws-peer`` announcements to every joined socket, cheaply.

Announcements are most of what a busy rendezvous server sends: every join is
announced to every joined socket, and every joined address is re-announced
each round.  Sent one by one, each costs a queue operation, a writer task
wake-up and a system call per recipient, and a burst of N joins costs N² of
them.  Here announcements made close together are gathered and go out
together: their websocket frames are built once, and each recipient gets all
of them in a single write of the very same bytes.

The wait before a gathered batch goes out grows with the number of joined
sockets (:data:`DELAY_PER_SOCKET`, at most :data:`MAX_DELAY`), so a flush
costs at most a fixed share of the process however often peers join, while a
small server still announces within milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from wsstar.directory import Owner, PeerDirectory, SocketId
from wsstar.server.engineio import Session, text_frame
from wsstar.star.effects import Announce
from wsstar.wire import codec, events

#: Seconds of gathering per joined socket before a batch goes out.
DELAY_PER_SOCKET = 20e-6
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
    ) -> None:
        """``session_of`` finds the session of one of this node's sockets."""
        self._directory = directory
        self._session_of = session_of
        self._pending: dict[str, Owner | None] = {}
        self._timer: asyncio.TimerHandle | None = None
        #: Deliveries skipped because their client was too far behind.
        self.skipped = 0

    def add(self, announcement: Announce) -> None:
        """Send ``announcement`` with the next batch."""
        # Announced twice before a flush (a join and its round): once is enough.
        self._pending[announcement.address] = announcement.skip
        if self._timer is None:
            delay = min(MAX_DELAY, DELAY_PER_SOCKET * len(self._directory.local_sockets()))
            self._timer = asyncio.get_running_loop().call_later(delay, self.flush)

    def close(self) -> None:
        """Drop what is pending (the server is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()

    def flush(self) -> None:
        """Send everything gathered so far."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, {}
        directory = self._directory
        # An address that left before its announcement went out is not
        # announced: nobody could reach it.
        items = [
            (_announcement_text(address), skip)
            for address, skip in pending.items()
            if directory.owner(address) is not None
        ]
        if not items:
            return
        texts = [text for text, _ in items]
        frames = [text_frame("4" + text) for text in texts]
        everything = b"".join(frames)
        # Only this node's sockets are written to; a skipped owner elsewhere
        # is another node's business.
        node = directory.node
        skips = {skip.socket for _, skip in items if skip is not None and skip.node == node}
        for sid in directory.local_sockets():
            if sid in skips:
                mine = [
                    i
                    for i, (_, skip) in enumerate(items)
                    if skip is None or skip.socket != sid or skip.node != node
                ]
                if mine:
                    self._send(sid, b"".join(frames[i] for i in mine), [texts[i] for i in mine])
            else:
                self._send(sid, everything, texts)

    def replay(self, session: Session, addresses: tuple[str, ...]) -> None:
        """Announce ``addresses`` to one session, in one write."""
        texts = [_announcement_text(address) for address in addresses]
        self._write(session, b"".join(text_frame("4" + text) for text in texts), texts)

    def _send(self, sid: SocketId, frames: bytes, texts: list[str]) -> None:
        session = self._session_of(sid)
        if session is not None:
            self._write(session, frames, texts)

    def _write(self, session: Session, frames: bytes, texts: list[str]) -> None:
        if (
            session.queued_packets() >= MAX_QUEUED_PACKETS
            or session.buffered_bytes() > MAX_BUFFERED_BYTES
        ):
            self.skipped += 1
            return
        if not session.write_frames(frames):
            session.send_texts(texts)


def _announcement_text(address: str) -> str:
    text = codec.encode(codec.EVENT, [events.PEER, address])
    assert text is not None  # an address is a string
    return text
