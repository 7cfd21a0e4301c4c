"""The I/O side of a dial in flight: where its answer goes, and its timer.

The rules track a dial's state (:class:`~wsstar.star.effects.DialKey`); the
service needs three more things per dial, kept together here so they are
created and dropped as one: the dialer's ack id (the ``ss-dial`` answer is
sent when the listener answers, long after the request), the timeout, and
the ack id ``ss-incomming`` was sent with (so a late answer from the listener
finds nothing to resolve).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from wsstar.directory import Owner, SocketId
from wsstar.star.effects import DialKey


@dataclass(slots=True)
class DialRecord:
    #: The dialer's ack id for its ``ss-dial``.
    ack_id: int
    timer: asyncio.TimerHandle | None = None
    #: The listener, and the ack id ``ss-incomming`` went out with.
    listener: Owner | None = None
    incoming_ack_id: int | None = None


class DialBook:
    """Every dial this node is waiting on, and the ``ss-incomming`` acks it
    expects, both ways round."""

    def __init__(self) -> None:
        self._records: dict[DialKey, DialRecord] = {}
        self._by_incoming: dict[tuple[SocketId, int], DialKey] = {}

    def __len__(self) -> int:
        return len(self._records)

    def add(self, key: DialKey, ack_id: int) -> None:
        self._records[key] = DialRecord(ack_id)

    def asked(
        self, key: DialKey, listener: Owner, ack_id: int | None, timer: asyncio.TimerHandle
    ) -> None:
        """``ss-incomming`` went to ``listener`` with ``ack_id`` (None: it
        went through the listener's node, which keeps the ack id)."""
        record = self._records.get(key)
        if record is None:
            timer.cancel()
            return
        record.listener, record.incoming_ack_id, record.timer = listener, ack_id, timer
        if ack_id is not None:
            self._by_incoming[(listener.socket, ack_id)] = key

    def get(self, key: DialKey) -> DialRecord | None:
        return self._records.get(key)

    def answered(self, listener: SocketId, ack_id: int) -> DialKey | None:
        """The dial a listener's ack answers, if it is still waiting."""
        return self._by_incoming.get((listener, ack_id))

    def pop(self, key: DialKey) -> DialRecord | None:
        """Forget a dial: its timer is stopped and a late answer finds nothing."""
        record = self._records.pop(key, None)
        if record is None:
            return None
        if record.timer is not None:
            record.timer.cancel()
        if record.listener is not None and record.incoming_ack_id is not None:
            self._by_incoming.pop((record.listener.socket, record.incoming_ack_id), None)
        return record

    def dialed_by(self, dialer: Owner) -> list[DialKey]:
        return [key for key in self._records if key.dialer == dialer]

    def close(self) -> None:
        """Stop every timer (the server is stopping)."""
        for record in self._records.values():
            if record.timer is not None:
                record.timer.cancel()
                record.timer = None
