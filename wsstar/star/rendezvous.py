"""The rendezvous rules: join (with the crypto challenge), leave, dial, announce.

Plain synchronous code that knows nothing of sockets.  Each socket is an opaque
id; each request returns the reply to send back (if the request gets one now)
and the :mod:`~wsstar.star.effects` to carry out first.  The I/O layer
(:mod:`wsstar.server.service`) only parses requests, calls in here, and
performs the effects in order.  Every request is counted here, once, when its
outcome is known, including those the I/O layer refused before they got here
(it passes the :class:`~wsstar.wire.reasons.Refusal` in).

Behaviour follows ``libp2p-websocket-star-rendezvous@0.4.1`` as clients observe
it.  Where the reference hangs, leaks or answers with an opaque ``{}``, the
difference is deliberate and listed in PROTOCOL.md.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from wsstar.directory import NodeId, Owner, PeerDirectory, SocketId
from wsstar.identity.addresses import claimed_peer_id, is_websocket_star
from wsstar.identity.keys import (
    InvalidPublicKey,
    MalformedSignature,
    PublicKey,
    decode_public_key,
    lenient_unhex,
    shared_form,
)
from wsstar.star.announce import AnnouncementSchedule
from wsstar.star.effects import (
    Announce,
    AnswerDial,
    AskIncoming,
    AwaitReplay,
    DialKey,
    Effect,
    Replay,
)
from wsstar.star.relay import StreamTable
from wsstar.star.routes import Routes
from wsstar.wire import codec
from wsstar.wire.events import DIALER_HALF, LISTENER_HALF, StreamEvent, parse_stream_event
from wsstar.wire.reasons import Reason, Refusal
from wsstar.wire.replies import (
    CONNECTED,
    Challenge,
    DialReply,
    Joined,
    JoinReply,
    ListenerError,
)
from wsstar.wire.requests import DialRequest, JoinRequest, LeaveRequest


def make_nonce() -> str:
    """Two random UUIDs back to back, like the reference (72 characters).

    Clients only need a truthy string to sign; keeping the reference's shape
    avoids surprising anything that logs or checks it.
    """
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4)) + str(
        uuid.UUID(bytes=secrets.token_bytes(16), version=4)
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """The knobs the rules themselves depend on."""

    crypto_challenge: bool = True
    strict_multiaddr: bool = True
    #: Seconds an issued nonce stays answerable; the reference never expires them.
    challenge_lifetime: float = 60.0
    #: Unanswered challenges one socket may hold (one per address it is joining).
    max_pending_challenges: int = 16
    #: Addresses one socket may hold (the real client joins one per socket).
    max_addresses_per_socket: int = 16
    #: Dials one socket may have waiting for their listener's answer.
    max_pending_dials_per_socket: int = 64
    #: Dials that may wait for one listener's answer: a peer flooded with
    #: ``ss-incomming`` would otherwise accept and upgrade every one.
    max_pending_dials_per_listener: int = 64
    #: Relayed half-streams one socket may feed (each relayed connection is
    #: one half-stream from each side).
    max_streams_per_socket: int = 1024
    #: Peers listed in a join ack at most: a swarm that size or smaller sees
    #: exactly what the reference sends; in a larger one each ack would be
    #: megabytes, and the rest arrive through re-announcement rounds.
    join_peers_limit: int = 1000
    #: Seconds after a join when the new socket hears again, as ``ws-peer``,
    #: of the peers its join ack listed and those announced since: real
    #: stacks attach their discovery handler only after their join completes,
    #: and drop what came before.
    join_replay_delay: float = 0.75


#: Seconds for which the peer list drawn for a join ack in a swarm above the
#: limit is given to the joins that follow: in a burst they would each draw
#: and encode a list of ``join_peers_limit`` peers, about a megabyte of work
#: per join, for lists that differ only by the last few joins (which reach
#: them in their replay instead).
LISTING_REUSE = 0.1


@dataclass(slots=True)
class Stats:
    """Counters behind the ``rendezvous_*`` metrics.

    Every request is counted once, when its outcome is known, so that
    ``total == success + failure`` holds for joins, and for dials once none is
    in flight (the reference counts some failures twice and hung dials never).
    """

    joins_success: int = 0
    joins_failure: int = 0
    dials_success: int = 0
    dials_failure: int = 0

    @property
    def joins_total(self) -> int:
        return self.joins_success + self.joins_failure

    @property
    def dials_total(self) -> int:
        return self.dials_success + self.dials_failure


@dataclass(slots=True)
class _Challenge:
    key: PublicKey
    nonce: str
    expires: float


@dataclass(slots=True)
class _Listing:
    """A join ack's peer list, drawn once and given to the joins of a moment."""

    peers: list[str]
    #: The peers of a list sampled from a large swarm; empty when the list
    #: holds everyone (it is not given again).
    members: frozenset[str]
    #: The list's JSON text, encoded once for all who get it.
    text: bytes
    drawn: float

    @property
    def sampled(self) -> bool:
        return bool(self.members)


@dataclass(slots=True)
class _Socket:
    """What the rules remember about one connected socket."""

    owner: Owner
    #: Addresses this socket joined and may dial from, in join order.  Unlike
    #: ownership this survives a takeover by a newer socket, as in the reference.
    authorised: list[str] = field(default_factory=list)
    challenges: dict[str, _Challenge] = field(default_factory=dict)
    #: Dials this socket started that await the listener's answer.
    dialing: set[str] = field(default_factory=set)
    #: Dials this socket was asked to accept, by key.
    incoming: set[DialKey] = field(default_factory=set)
    #: The address this socket joined for each peer id.
    peers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _PendingDial:
    target: Owner
    from_addr: str


class Rendezvous:
    """All rendezvous state of one server process, and the rules that change it."""

    def __init__(
        self,
        directory: PeerDirectory,
        settings: Settings,
        announce_interval: float,
        clock: Callable[[], float],
        announce_budget: int | None = None,
        nonce_factory: Callable[[], str] = make_nonce,
        rng: random.Random | None = None,
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.schedule = AnnouncementSchedule(announce_interval, announce_budget)
        self.streams = StreamTable(directory.node)
        #: This node's sockets' part in relays other nodes keep.
        self.routes = Routes()
        self.stats = Stats()
        self._clock = clock
        self._nonce = nonce_factory
        self._rng = rng if rng is not None else random.Random()
        #: Joins waiting for their replay, in the order they are due: (due,
        #: socket, the peers its ack listed, when that list was drawn).
        self._replays: deque[tuple[float, SocketId, list[str], float]] = deque()
        #: Recent joins, (when, address), newest last: what a replay adds to
        #: the ack's list.  Kept as long as a replay may need it.
        self._recent_joins: deque[tuple[float, str]] = deque()
        #: Joined address → its JSON string literal (see :meth:`quote`).
        self._quoted: dict[str, str] = {}
        #: The peer list the last join ack listed in a large swarm.
        self._listing: _Listing | None = None
        self._sockets: dict[SocketId, _Socket] = {}
        self._dials: dict[DialKey, _PendingDial] = {}
        #: Peer ids admitted in a private swarm (None: everyone).  Replaced,
        #: never mutated, when the list is reloaded.
        self.allowed_peers: frozenset[str] | None = None

    # -- connection lifecycle ----------------------------------------------

    def connect(self, sid: SocketId) -> Owner:
        """A socket of this node connected; returns how effects address it."""
        owner = Owner(self.directory.node, sid)
        self._sockets[sid] = _Socket(owner)
        return owner

    def disconnect(self, sid: SocketId) -> list[Effect]:
        """Forget a socket: its addresses (only those it still owns), challenges,
        dials and streams.  Returns what the other parties must be told."""
        state = self._sockets.pop(sid, None)
        if state is None:
            return []
        for address in self.directory.release_all(state.owner):
            self._departed(address)
        out: list[Effect] = []
        for dial_id in state.dialing:
            # The dialer is gone: nobody is left to ack, and the stream the
            # listener might accept later would only feed a closed socket.
            self._dials.pop(DialKey(state.owner, dial_id), None)
        for key in state.incoming:
            if self._dials.pop(key, None) is not None:
                out.extend(self._fail_dial(key, Refusal(Reason.DIAL_TARGET_GONE)))
        out.extend(self.streams.drop_socket(state.owner))
        return out

    def owned_by(self, sid: SocketId) -> list[str]:
        """The addresses a socket of this node owns now."""
        state = self._sockets.get(sid)
        return list(self.directory.owned_by(state.owner)) if state is not None else []

    # -- ss-join / ss-leave --------------------------------------------------

    def join(self, sid: SocketId, request: JoinRequest | Refusal) -> tuple[JoinReply, list[Effect]]:
        """One ``ss-join``: a challenge step, a response step, or a plain join;
        or a request the I/O layer already refused, counted here."""
        if isinstance(request, Refusal):
            return self._join_failed(request)
        state = self._sockets[sid]
        address, data = request.address, request.data
        if self.settings.strict_multiaddr and not is_websocket_star(address):
            return self._join_failed(Refusal(Reason.INVALID_MULTIADDR))
        if not self.settings.crypto_challenge:
            claimed = claimed_peer_id(address)
            peer = shared_form(claimed) if claimed is not None else None
            return self._finish_join(state, address, peer)
        if data == "":
            return self._join_failed(Refusal(Reason.NO_ID_PROVIDED))
        now = self._clock()
        challenge = state.challenges.pop(address, None)
        if challenge is None:
            return self._issue_challenge(state, address, data, now)
        if challenge.expires >= now:
            return self._answer_challenge(state, address, challenge, data)
        # Too late to answer.  The data may still be a fresh public key from a
        # client starting over; if it is not, say why the signature was refused.
        reply, effects = self._issue_challenge(state, address, data, now)
        if isinstance(reply, Refusal) and reply.reason is Reason.INVALID_PUBLIC_KEY:
            return Refusal(Reason.CHALLENGE_EXPIRED), effects
        return reply, effects

    def leave(self, sid: SocketId, request: LeaveRequest | None) -> bool:
        """``ss-leave``: only the current owner can leave an address.  True if
        the address was left."""
        state = self._sockets.get(sid)
        if (
            request is None
            or state is None
            or not self.directory.release(request.address, state.owner)
        ):
            return False
        state.authorised = [a for a in state.authorised if a != request.address]
        state.peers = {p: a for p, a in state.peers.items() if a != request.address}
        self._departed(request.address)
        return True

    def _issue_challenge(
        self, state: _Socket, address: str, pubkey_hex: str, now: float
    ) -> tuple[JoinReply, list[Effect]]:
        claimed = claimed_peer_id(address)
        if claimed is None:
            return self._join_failed(Refusal(Reason.NO_PEER_ID_IN_ADDRESS))
        try:
            key = decode_public_key(lenient_unhex(pubkey_hex))
        except InvalidPublicKey as exc:
            return self._join_failed(Refusal(Reason.INVALID_PUBLIC_KEY, str(exc)))
        unfit = key.unfit()
        if unfit is not None:
            return self._join_failed(Refusal(Reason.INVALID_PUBLIC_KEY, unfit.value))
        if claimed not in key.peer_ids():
            return self._join_failed(Refusal(Reason.ID_MISMATCH))
        if not self._admitted(key):
            return self._join_failed(Refusal(Reason.PEER_NOT_ALLOWED))
        self._expire_challenges(state, now)
        if len(state.challenges) >= self.settings.max_pending_challenges:
            return self._join_failed(Refusal(Reason.TOO_MANY_CHALLENGES))
        nonce = self._nonce()
        state.challenges[address] = _Challenge(key, nonce, now + self.settings.challenge_lifetime)
        return Challenge(nonce), []

    def _answer_challenge(
        self, state: _Socket, address: str, challenge: _Challenge, sig_hex: str
    ) -> tuple[JoinReply, list[Effect]]:
        # The nonce was popped before we got here: it answers one attempt only,
        # so a captured signature cannot be replayed.
        try:
            valid = challenge.key.verify(challenge.nonce.encode(), lenient_unhex(sig_hex))
        except MalformedSignature:
            return self._join_failed(Refusal(Reason.CRYPTO_ERROR))
        if not valid:
            return self._join_failed(Refusal(Reason.SIGNATURE_INVALID))
        if not self._admitted(challenge.key):  # the list may have been reloaded meanwhile
            return self._join_failed(Refusal(Reason.PEER_NOT_ALLOWED))
        return self._finish_join(state, address, challenge.key.peer_id())

    def _admitted(self, key: PublicKey) -> bool:
        return self.allowed_peers is None or not self.allowed_peers.isdisjoint(key.peer_ids())

    def _finish_join(
        self, state: _Socket, address: str, peer: str | None
    ) -> tuple[JoinReply, list[Effect]]:
        """Join ``address`` for ``peer`` (its peer id, when known).

        One socket holds one address per peer: a key that joins another
        spelling of its address (``/p2p/`` for ``/ipfs/``, a trailing ``/``,
        the hashed form of its id) moves to it rather than being listed, and
        announced, as several peers.
        """
        previous = state.peers.get(peer) if peer is not None else None
        if (
            address not in state.authorised
            and previous is None
            and len(state.authorised) >= self.settings.max_addresses_per_socket
        ):
            return self._join_failed(Refusal(Reason.TOO_MANY_ADDRESSES))
        if previous is not None and previous != address:
            if self.directory.release(previous, state.owner):
                self._departed(previous)
            state.authorised = [a for a in state.authorised if a != previous]
        if peer is not None:
            state.peers[peer] = address
        self.directory.claim(address, state.owner)
        if address not in state.authorised:
            state.authorised.append(address)
        now = self._clock()
        self.schedule.add(address, now)
        if address not in self._quoted:
            self._quoted[address] = codec.quote(address)
        self.stats.joins_success += 1
        listing = self._listing_for(address, now)
        self._recent_joins.append((now, address))
        delay = self.settings.join_replay_delay
        self._replays.append((now + delay, state.owner.socket, listing.peers, listing.drawn))
        effects: list[Effect] = []
        if listing.sampled and self.schedule.budget is not None:
            # A sampled list means a large swarm, where joins come many at a
            # time: what the socket is sent before its replay would spend
            # its budget on news it is not listening for yet.
            effects.append(AwaitReplay(state.owner, delay))
        announcement = self._announcement(address, join=True)
        if announcement is not None:
            effects.append(announcement)
        return Joined(listing.peers, listing.text), effects

    def _listing_for(self, address: str, now: float) -> _Listing:
        """The peers a join ack lists: everyone, or in a swarm larger than the
        limit the most recent half of it and a random sample of the rest, so
        that both newcomers and long-standing peers are found at once.  A
        large swarm's list is given again for :data:`LISTING_REUSE` seconds
        to joins it does not list."""
        directory = self.directory
        if len(directory) - 1 <= self.settings.join_peers_limit:
            self._listing = None
            peers = [a for a in directory.addresses() if a != address]
            return _Listing(peers, frozenset(), codec.quoted_list(self._quote_all(peers)), now)
        listing = self._listing
        if listing is None or listing.drawn + LISTING_REUSE < now or address in listing.members:
            peers = self._sample(address)
            text = codec.quoted_list(self._quote_all(peers))
            listing = self._listing = _Listing(peers, frozenset(peers), text, now)
        return listing

    def _sample(self, address: str) -> list[str]:
        directory = self.directory
        limit = self.settings.join_peers_limit
        recent: list[str] = []
        for other in directory.newest():
            if len(recent) >= limit // 2:
                break
            if other != address:
                recent.append(other)
        excluded = {address, *recent}
        need = limit - len(recent)
        chosen: dict[str, None] = {}
        # A few more than needed, as some may be among those excluded; in
        # the rare case that too many were, draw again.  The swarm holds
        # more than ``limit + 1``, so there are always enough.
        while len(chosen) < need:
            for other in directory.sample(need - len(chosen) + 16, self._rng):
                if other not in excluded and len(chosen) < need:
                    chosen[other] = None
        recent.reverse()
        return [*chosen, *recent]

    # -- other nodes' changes ----------------------------------------------------

    def remote_joined(self, address: str) -> list[Effect]:
        """An address joined on another node, now in this node's directory:
        it takes its place in the rounds and is announced to this node's
        sockets (each node tells its own, so a join crosses to a node once)."""
        now = self._clock()
        self.schedule.add(address, now)
        if address not in self._quoted:
            self._quoted[address] = codec.quote(address)
        self._recent_joins.append((now, address))
        announcement = self._announcement(address, join=True)
        return [announcement] if announcement is not None else []

    def remote_left(self, address: str) -> None:
        """An address another node held is gone from this node's directory."""
        self._departed(address)

    def _departed(self, address: str) -> None:
        """``address`` is no longer joined anywhere on this node's watch."""
        self.schedule.remove(address)
        self._quoted.pop(address, None)
        if self._listing is not None and address in self._listing.members:
            self._listing = None  # no ack lists a peer that has gone

    def _quote_all(self, addresses: list[str]) -> list[str]:
        """The JSON string literals of joined ``addresses``: join acks list
        mostly the same peers, and each is encoded once, when it joins,
        rather than once per ack."""
        quoted = self._quoted
        return [quoted.get(a) or codec.quote(a) for a in addresses]

    def quote(self, address: str) -> str:
        """One address's JSON string literal, for its announcements: each
        address is announced again every round and in replays."""
        return self._quoted.get(address) or codec.quote(address)

    def _join_failed(self, refusal: Refusal) -> tuple[JoinReply, list[Effect]]:
        self.stats.joins_failure += 1
        return refusal, []

    def _expire_challenges(self, state: _Socket, now: float) -> None:
        expired = [a for a, c in state.challenges.items() if c.expires < now]
        for address in expired:
            del state.challenges[address]

    # -- announcements --------------------------------------------------------

    def _announcement(self, address: str, join: bool = False) -> Announce | None:
        """``ws-peer(address)`` for every owner of another joined address,
        each once (the reference repeats it per address); None if that is
        nobody."""
        directory = self.directory
        owner = directory.owner(address)
        skip = owner if owner is not None and len(directory.owned_by(owner)) == 1 else None
        if directory.owner_count() <= (skip is not None):
            return None
        return Announce(address, skip, join)

    def announcements_due(self, now: float) -> list[Effect]:
        out: list[Effect] = []
        for address in self.schedule.pop_due(now):
            announcement = self._announcement(address)
            if announcement is not None:
                out.append(announcement)
        while self._replays and self._replays[0][0] <= now:
            _, sid, told, drawn = self._replays.popleft()
            out.extend(self._replay(sid, told, drawn))
        # A replay adds the joins since its ack's list was drawn.
        horizon = now - self.settings.join_replay_delay - LISTING_REUSE
        while self._recent_joins and self._recent_joins[0][0] < horizon:
            self._recent_joins.popleft()
        return out

    def _replay(self, sid: SocketId, told: list[str], drawn: float) -> list[Effect]:
        """``ws-peer`` to one socket for the addresses announced since its
        join ack's list was drawn and the peers that list held, newest first,
        those still joined, within its budget."""
        state = self._sockets.get(sid)
        if state is None:
            return []
        directory = self.directory
        owned = directory.owned_by(state.owner)
        if not owned:
            return []  # it left: announcements are for joined sockets only
        limit = self.schedule.budget or self.settings.join_peers_limit
        since = []
        for when, address in reversed(self._recent_joins):
            if when < drawn:
                break
            since.append(address)
        chosen: dict[str, None] = {}
        for address in [*since, *reversed(told)]:
            if len(chosen) >= limit:
                break
            if address not in owned and directory.owner(address) is not None:
                chosen[address] = None
        return [Replay(state.owner, tuple(chosen))] if chosen else []

    # -- ss-dial ---------------------------------------------------------------

    def dial(
        self, sid: SocketId, request: DialRequest | Refusal
    ) -> tuple[Refusal | None, list[Effect]]:
        """``ss-dial``: either an immediate refusal, or ``None`` and the
        effects that ask the listener; the reply then comes from
        :meth:`dial_answered`, :meth:`dial_timed_out` or a disconnect."""
        if isinstance(request, Refusal):
            return self._dial_failed(request), []
        state = self._sockets[sid]
        if request.from_addr not in state.authorised:
            return self._dial_failed(Refusal(Reason.NOT_AUTHORIZED)), []
        target = self.directory.owner(request.to_addr)
        if target is None:
            return self._dial_failed(Refusal(Reason.PEER_NOT_FOUND)), []
        local = target.node == self.directory.node
        listener = self._sockets.get(target.socket) if local else None
        if local and listener is None:
            return self._dial_failed(Refusal(Reason.PEER_NOT_FOUND)), []
        if len(state.dialing) >= self.settings.max_pending_dials_per_socket:
            return self._dial_failed(Refusal(Reason.TOO_MANY_DIALS)), []
        if listener is not None and self._listener_pending(listener) >= (
            self.settings.max_pending_dials_per_listener
        ):
            return self._dial_failed(Refusal(Reason.LISTENER_BUSY)), []
        if self.streams_sent_by(sid) >= self.settings.max_streams_per_socket:
            return self._dial_failed(Refusal(Reason.TOO_MANY_STREAMS)), []
        key = DialKey(state.owner, request.dial_id)
        if key in self._dials or self._dial_id_taken(
            state.owner, target, listener, request.dial_id
        ):
            return self._dial_failed(Refusal(Reason.DIAL_ID_IN_USE)), []
        self._dials[key] = _PendingDial(target, request.from_addr)
        state.dialing.add(request.dial_id)
        if listener is not None:
            listener.incoming.add(key)
        forward = request.dial_id + DIALER_HALF
        effects: list[Effect] = list(self.streams.open(state.owner, target, forward, self._clock()))
        effects.append(AskIncoming(target, key, (request.dial_id, request.from_addr)))
        return None, effects

    def _listener_pending(self, listener: _Socket) -> int:
        return len(listener.incoming) + self.routes.pending(listener.owner.socket)

    def dial_answered(self, key: DialKey, error: object) -> list[Effect]:
        """The listener acked ``ss-incomming``; a truthy first ack argument is an
        error that reaches the dialer unchanged."""
        pending = self._take_dial(key)
        if pending is None:
            return []
        if error:
            return self._fail_dial(key, ListenerError(error))
        if pending.target.node == self.directory.node and self.streams_sent_by(
            pending.target.socket
        ) >= (self.settings.max_streams_per_socket):
            return self._fail_dial(key, Refusal(Reason.TOO_MANY_STREAMS))
        self.stats.dials_success += 1
        effects: list[Effect] = list(
            self.streams.open(
                pending.target, key.dialer, key.dial_id + LISTENER_HALF, self._clock()
            )
        )
        effects.append(AnswerDial(key, CONNECTED))
        return effects

    def streams_sent_by(self, sid: SocketId) -> int:
        """Half-streams a socket of this node feeds, kept here or elsewhere."""
        return self.streams.sending(Owner(self.directory.node, sid)) + self.routes.sending(sid)

    def _dial_id_taken(
        self, dialer: Owner, target: Owner, listener: _Socket | None, dial_id: str
    ) -> bool:
        """Whether ``dial_id`` would mix with a relay already under way.

        Dial ids are chosen by clients and only unique per dialer, but the
        listener's streams are named by the id alone: a second dialer reusing
        an id toward the same listener would feed the first one's stream.
        """
        return self.streams.exists(dialer, dial_id + DIALER_HALF) or self._listener_uses(
            target, listener, dial_id
        )

    def _listener_uses(self, target: Owner, listener: _Socket | None, dial_id: str) -> bool:
        """Whether ``target``'s relays already use ``dial_id``: those kept
        here, and, for a socket of this node (``listener``), those other nodes
        keep and the dials it was asked to accept.  A listener on another
        node is checked there too, when it is asked (:meth:`remote_asked`)."""
        if self.streams.receiving(target, dial_id + DIALER_HALF) or self.streams.exists(
            target, dial_id + LISTENER_HALF
        ):
            return True
        return listener is not None and (
            any(key.dial_id == dial_id for key in listener.incoming)
            or self.routes.taken(target.socket, dial_id)
        )

    # -- dials and streams across nodes -------------------------------------------

    def remote_asked(self, sid: SocketId, dial_id: str) -> Refusal | None:
        """Another node's dialer wants this node's socket ``sid``: why not, if
        it may not be asked (the checks a local dial makes of its listener)."""
        listener = self._sockets.get(sid)
        if listener is None or not self.directory.owned_by(listener.owner):
            return Refusal(Reason.PEER_NOT_FOUND)
        if self._listener_pending(listener) >= self.settings.max_pending_dials_per_listener:
            return Refusal(Reason.LISTENER_BUSY)
        if self._listener_uses(listener.owner, listener, dial_id):
            return Refusal(Reason.DIAL_ID_IN_USE)
        return None

    def remote_answer_refused(self, sid: SocketId) -> Refusal | None:
        """A socket accepted another node's dial: why it may not, if it
        already sends as many streams as a socket may."""
        if self.streams_sent_by(sid) >= self.settings.max_streams_per_socket:
            return Refusal(Reason.TOO_MANY_STREAMS)
        return None

    def dial_refused(self, key: DialKey, refusal: Refusal) -> list[Effect]:
        """The listener's node refused the dial (:meth:`remote_asked`)."""
        if self._take_dial(key) is None:
            return []
        return self._fail_dial(key, refusal)

    def remote_stream_event(
        self, owner: Owner, event: str, args: tuple[object, ...]
    ) -> list[Effect]:
        """A pull-stream event from ``owner``, a socket of another node (or,
        through :meth:`stream_event`, of this one), for a stream kept here."""
        parsed = parse_stream_event(event)
        if parsed is None:
            return []
        kind, name = parsed
        if kind is StreamEvent.ACCEPT:
            return list(self.streams.accept(owner, name))
        value = args[0] if args else None
        if kind is StreamEvent.ERROR:
            return list(self.streams.end(owner, name, value))
        chunk = to_chunk(value)
        return list(self.streams.queue(owner, name, chunk)) if chunk is not None else []

    def remote_gone(self, owner: Owner) -> list[Effect]:
        """Another node's socket that takes part in relays kept here is gone:
        as for a local socket, dials to it fail and its streams end."""
        out: list[Effect] = []
        for key in [k for k, p in self._dials.items() if p.target == owner]:
            self._take_dial(key)
            out.extend(self._fail_dial(key, Refusal(Reason.DIAL_TARGET_GONE)))
        out.extend(self.streams.drop_socket(owner))
        return out

    def node_gone(self, node: NodeId) -> list[Effect]:
        """The link with ``node`` broke: every dial and relay with its sockets
        ends, and its part in this node's sockets' relays is forgotten."""
        owners = self.streams.owners_on(node) | {
            p.target for p in self._dials.values() if p.target.node == node
        }
        out: list[Effect] = []
        for owner in owners:
            out.extend(self.remote_gone(owner))
        self.routes.drop_node(node)
        departed = self.streams.departed
        departed[:] = [entry for entry in departed if entry[0].node != node]
        return out

    def dial_timed_out(self, key: DialKey) -> list[Effect]:
        if self._take_dial(key) is None:
            return []
        return self._fail_dial(key, Refusal(Reason.DIAL_TIMEOUT))

    def pending_dials(self) -> int:
        return len(self._dials)

    def _take_dial(self, key: DialKey) -> _PendingDial | None:
        pending = self._dials.pop(key, None)
        if pending is None:
            return None
        dialer = self._sockets.get(key.dialer.socket)
        if dialer is not None:
            dialer.dialing.discard(key.dial_id)
        target = self._sockets.get(pending.target.socket)
        if target is not None:
            target.incoming.discard(key)
        return pending

    def _fail_dial(self, key: DialKey, reply: DialReply) -> list[Effect]:
        self.streams.discard(key.dialer, key.dial_id + DIALER_HALF)
        self.stats.dials_failure += 1
        return [AnswerDial(key, reply)]

    def _dial_failed(self, refusal: Refusal) -> Refusal:
        self.stats.dials_failure += 1
        return refusal

    # -- pull-stream relay -------------------------------------------------------

    def stream_event(self, sid: SocketId, event: str, args: tuple[object, ...]) -> list[Effect]:
        """Route one ``socket.io-pull-stream.*`` event; unknown streams are ignored."""
        state = self._sockets.get(sid)
        return self.remote_stream_event(state.owner, event, args) if state is not None else []

    # -- introspection (metrics, health, tests) -------------------------------------

    def socket_count(self) -> int:
        return len(self._sockets)

    def local_peer_count(self) -> int:
        """Addresses owned by this node's sockets (``len(directory)`` is the swarm)."""
        directory = self.directory
        return sum(len(directory.owned_by(s.owner)) for s in self._sockets.values())

    def pending_challenges(self) -> int:
        return sum(len(s.challenges) for s in self._sockets.values())


def to_chunk(value: object) -> bytes | None:
    """A relay chunk as bytes, whatever form the sender's codec produced.

    Browsers without a global ``Buffer`` send JSON ``{"type":"Buffer","data":
    [...]}``; the reference also turns plain byte arrays and strings into
    bytes, and drops what it cannot convert (numbers, null).
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict) and value.get("type") == "Buffer":
        value = value.get("data")
    if isinstance(value, list):
        # Node's Buffer.from(array) keeps the length and turns what is not a
        # number into 0.
        return bytes(b & 0xFF if isinstance(b, int) else 0 for b in value)
    return None
