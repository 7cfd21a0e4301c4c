"""What the rendezvous rules ask the I/O layer to do.

The rules (``rendezvous.py``, ``relay.py``) never touch a socket: every state
change returns a list of these effects, in the order they must reach the wire.
Order matters to clients: a stream's ``accept`` goes to the dialer before
``ss-incomming`` goes to the listener.  Announcements are the exception: they
are gathered for a moment and sent together (see ``server/fanout.py``).

Effects are addressed to :class:`~wsstar.directory.Owner` values, not to bare
socket ids: the I/O layer routes each to the node its owner is on.  The union
:data:`Effect` is closed; the interpreter matches on it exhaustively.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsstar.directory import Owner
from wsstar.wire.replies import DialReply


@dataclass(frozen=True, slots=True)
class DialKey:
    """A dial in flight: the dialing socket and the dial id it chose.

    Dial ids are chosen by clients, so they are only unique per dialer.
    """

    dialer: Owner
    dial_id: str


@dataclass(frozen=True, slots=True)
class Emit:
    """Send the event ``event(*args)`` to one socket, with no ack."""

    to: Owner
    event: str
    args: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Announce:
    """Send ``ws-peer(address)`` to every socket that has joined an address,
    except ``skip``.

    The recipients are whoever has joined when the announcement goes out, not
    when it was made: announcements made close together go out together, one
    write per socket, and a socket that joined in between should hear them.
    """

    address: str
    skip: Owner | None
    #: A join's announcement, drawn from each socket's budget; a round's
    #: re-announcement (False) is already paced by the schedule.
    join: bool = False


@dataclass(frozen=True, slots=True)
class Replay:
    """Send ``ws-peer`` for each of ``addresses`` to one socket: what a newly
    joined socket was told before it could listen, told again."""

    to: Owner
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AwaitReplay:
    """Send ``to`` no announcements for ``seconds``, until its early replay:
    a socket that has just joined a large swarm hears the newest of them
    there.  Most stacks are not listening yet, and in a burst what they
    could not hear would spend the budget the replay needs."""

    to: Owner
    seconds: float


@dataclass(frozen=True, slots=True)
class AskIncoming:
    """Send ``ss-incomming`` to a listener and report its ack (or silence) back
    to :meth:`wsstar.star.rendezvous.Rendezvous.dial_answered` /
    :meth:`~wsstar.star.rendezvous.Rendezvous.dial_timed_out`."""

    to: Owner
    dial: DialKey
    args: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class AnswerDial:
    """Ack a pending ``ss-dial``: connected, or why not."""

    dial: DialKey
    reply: DialReply


Effect = Emit | Announce | Replay | AwaitReplay | AskIncoming | AnswerDial
