"""Admission limits: connections and request rates per client address.

A public rendezvous is open to anyone, so one address must not be able to take
all connections or keep the server busy verifying signatures.  This module
only counts and decides; the I/O layer asks it before accepting a connection
or serving a join or a dial, and tells the client when the answer is no.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds; 0 disables a bound."""

    max_connections: int = 50_000
    max_connections_per_ip: int = 256
    #: Sustained ss-join requests per second per address.  The burst covers
    #: a challenge join (two requests) for every connection the address may
    #: hold, so that many browsers behind one NAT rejoining at once after a
    #: restart are all served.
    joins_per_ip_per_second: float = 20.0
    #: Sustained ss-dial requests per second per address (bursts up to 4x).
    dials_per_ip_per_second: float = 100.0
    #: Whether loopback clients get per-address limits too.  They do not by
    #: default: they are a local test, a developer's swarm or a reverse proxy
    #: on the same host, where every client shares one address.
    limit_loopback: bool = False
    #: Sustained control events (anything but relayed stream traffic) per
    #: second per connection (bursts up to 4x); real clients send a handful.
    events_per_connection_per_second: float = 100.0


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.stamp) * self.rate >= self.burst


@dataclass(slots=True)
class _Client:
    connections: int = 0
    buckets: dict[str, TokenBucket] = field(default_factory=dict)


class Admission:
    """Connection counts and request buckets per client address."""

    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._clients: dict[str, _Client] = {}
        self.connections = 0
        #: Refusals by kind, for metrics.
        self.refused: dict[str, int] = {
            "connections": 0,
            "connections_per_ip": 0,
            "tcp_per_ip": 0,
            "joins": 0,
            "dials": 0,
            "events": 0,
            # Counted by the service: the engine refuses these itself.
            "origin": 0,
        }
        self._event_buckets: dict[str, TokenBucket] = {}
        #: Open TCP connections by client address.
        self._tcp: dict[str, int] = {}

    def exempt(self, ip: str) -> bool:
        """Whether ``ip`` is spared the per-address limits (a loopback client)."""
        return not self.limits.limit_loopback and _is_loopback(ip)

    def connect(self, ip: str) -> str | None:
        """Admit a connection from ``ip``, or say which bound refuses it."""
        limits = self.limits
        if limits.max_connections and self.connections >= limits.max_connections:
            self.refused["connections"] += 1
            return "connections"
        client = self._clients.get(ip)
        if (
            limits.max_connections_per_ip
            and client is not None
            and client.connections >= limits.max_connections_per_ip
            and not self.exempt(ip)
        ):
            self.refused["connections_per_ip"] += 1
            return "connections_per_ip"
        if client is None:
            client = self._clients[ip] = _Client()
        client.connections += 1
        self.connections += 1
        return None

    def tcp_open(self, ip: str) -> bool:
        """Admit a TCP connection from ``ip``: an address may hold twice as
        many as it may hold sessions (a polling session's requests and its
        upgrade take more than one).  Counted before any HTTP is read, so
        half-sent requests count too."""
        cap = 2 * self.limits.max_connections_per_ip
        count = self._tcp.get(ip, 0)
        if cap and count >= cap and not self.exempt(ip):
            self.refused["tcp_per_ip"] += 1
            return False
        self._tcp[ip] = count + 1
        return True

    def tcp_closed(self, ip: str) -> None:
        count = self._tcp.get(ip, 0) - 1
        if count > 0:
            self._tcp[ip] = count
        else:
            self._tcp.pop(ip, None)

    def disconnect(self, ip: str) -> None:
        client = self._clients.get(ip)
        if client is None:
            return
        client.connections -= 1
        self.connections -= 1
        self._forget_if_idle(ip, client)

    def allow(self, ip: str, kind: str) -> bool:
        """Take one ``kind`` ("joins" or "dials") token for ``ip``."""
        limits = self.limits
        if kind == "joins":
            rate = limits.joins_per_ip_per_second
            burst = max(rate * 4, 2.0 * limits.max_connections_per_ip)
        else:
            rate = limits.dials_per_ip_per_second
            burst = rate * 4
        if not rate or self.exempt(ip):
            return True
        now = self._clock()
        client = self._clients.setdefault(ip, _Client())
        bucket = client.buckets.get(kind)
        if bucket is None:
            bucket = client.buckets[kind] = TokenBucket(rate, burst, now)
        if bucket.take(now):
            return True
        self.refused[kind] += 1
        return False

    def allow_event(self, connection: str) -> bool:
        """Take one control-event token for ``connection``."""
        rate = self.limits.events_per_connection_per_second
        if not rate:
            return True
        now = self._clock()
        bucket = self._event_buckets.get(connection)
        if bucket is None:
            bucket = self._event_buckets[connection] = TokenBucket(rate, rate * 4, now)
        if bucket.take(now):
            return True
        self.refused["events"] += 1
        return False

    def forget_connection(self, connection: str) -> None:
        self._event_buckets.pop(connection, None)

    def sweep(self) -> None:
        """Forget addresses with no connection whose buckets have refilled."""
        for ip, client in list(self._clients.items()):
            self._forget_if_idle(ip, client)

    def _forget_if_idle(self, ip: str, client: _Client) -> None:
        # Buckets outlive the connection until they are full again, or a
        # client could reset its rate limit by reconnecting; after that the
        # state can go, so memory follows active addresses, not all ever seen.
        now = self._clock()
        if client.connections <= 0 and all(b.full(now) for b in client.buckets.values()):
            del self._clients[ip]


@lru_cache(maxsize=1024)
def _is_loopback(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
