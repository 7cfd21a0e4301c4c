"""Every command-line flag and environment variable, written once.

Each :class:`Option` names the :class:`~wsstar.server.config.ServerConfig`
field it sets; its default is that field's default, so the dataclasses are
the one place a default is written.  The argument parser, its ``--help`` and
the README's options table all follow from this table (a test compares the
README with ``--help``).

Flags and environment variables of ``libp2p-websocket-star-rendezvous`` keep
working (``PORT``, ``HOST``, ``DISABLE_*``, ``KEY``/``CERT``, and the
camelCase flag spellings), so the server can replace the reference in an
existing deployment without touching its configuration.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from wsstar.errors import ConfigError
from wsstar.server.config import ServerConfig

LOG_LEVELS = ("debug", "info", "warning", "error")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def truth(text: str) -> bool | None:
    """What a boolean's text says; None when it says neither.

    Unlike the reference, ``DISABLE_METRICS=0`` or ``--disableMetrics=false``
    means *not* disabled; anything unrecognised is an error rather than a
    silent "yes".
    """
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def env_flag(env: Mapping[str, str], name: str) -> bool:
    """A boolean environment variable (see :func:`truth`)."""
    value = truth(env.get(name, ""))
    if value is None:
        raise ConfigError(f"{name}={env[name]!r} is not a boolean (use 1/0, true/false)")
    return value


def switch_value(sets: bool) -> Callable[[str], bool]:
    """The parser of a switch's optional value, as in the reference's
    ``--disableMetrics=true``: a true value sets what the bare flag sets."""

    def parse(text: str) -> bool:
        value = truth(text)
        if value is None:
            raise argparse.ArgumentTypeError(f"not a boolean: {text!r} (use true or false)")
        return sets if value else not sets

    return parse


def _number(kind: Callable[[str], float], lowest: float, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            noun = "whole number" if kind is int else "number"
            raise argparse.ArgumentTypeError(f"not a {noun}: {text!r}") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"must be {what}: {text}")
        return value

    return parse


_positive_int = _number(int, 1, "positive")
_positive_float = _number(float, 1e-9, "positive")
_limit_int = _number(int, 0, "0 (no limit) or positive")
_limit_float = _number(float, 0, "0 (no limit) or positive")
_seconds = _number(float, 0, "0 or positive")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range")
    return port


def _log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"unknown log level {text!r} (use {', '.join(LOG_LEVELS)})"
        )
    return level


LOG_FORMATS = ("text", "json")


def _log_format(text: str) -> str:
    form = text.strip().lower()
    if form not in LOG_FORMATS:
        raise argparse.ArgumentTypeError(f"unknown log format {text!r} (use text or json)")
    return form


REDIS_SCHEMES = ("redis", "rediss", "unix")


def _redis_url(text: str) -> str:
    url = text.strip()
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in REDIS_SCHEMES:
        raise argparse.ArgumentTypeError(
            f"not a Redis URL: {text!r} (use redis://HOST:PORT/DB, rediss:// for TLS, "
            "or unix:///path)"
        )
    return url


def _origins(text: str) -> tuple[str, ...]:
    origins = tuple(o.strip() for o in text.split(",") if o.strip())
    if not origins:
        raise argparse.ArgumentTypeError("needs at least one origin, or *")
    return origins


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: where it goes, how it is spelled, what it means."""

    #: The ServerConfig field it sets, dotted for nested ones ("rules.strict_multiaddr").
    field: str
    flags: tuple[str, ...]
    meaning: str
    env: str | None = None
    #: Turns flag or environment text into the field's value; None for a switch.
    parse: Callable[[str], Any] | None = None
    #: For a switch: the value its flags (and a true environment variable) set.
    sets: bool = True
    #: For a switch: flags that set the opposite value.
    opposite: tuple[str, ...] = ()
    #: How the default reads, where the value alone would not say it.
    shown: str | None = None
    #: The field's value for a parsed one, where they differ (0 meaning "none").
    to_field: Callable[[Any], Any] | None = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.field.replace(".", "__")

    def default(self) -> Any:
        value: Any = ServerConfig()
        for part in self.field.split("."):
            value = getattr(value, part)
        return value

    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        value = self.default()
        if value is None:
            return "none"
        if isinstance(value, tuple):
            return ",".join(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def help_text(self) -> str:
        where = f"env {self.env}; " if self.env else ""
        return f"{self.meaning} ({where}default {self.default_text()})"


def _budget(value: int) -> int | None:
    return value or None


OPTIONS: tuple[Option, ...] = (
    Option("port", ("--port", "-p"), "TCP port", env="PORT", parse=_port),
    Option("host", ("--host", "-h"), "address to bind", env="HOST", parse=str),
    Option(
        "tls_cert",
        ("--cert",),
        "PEM certificate chain: serve https/wss (needs `--key`)",
        env="CERT",
        parse=str,
        metavar="FILE",
    ),
    Option(
        "tls_key",
        ("--key",),
        "PEM private key of `--cert`",
        env="KEY",
        parse=str,
        metavar="FILE",
    ),
    Option(
        "tls_pfx",
        ("--pfx",),
        "PKCS#12 file (.pfx, .p12) with the certificate chain and its key, instead of "
        "`--cert` and `--key`",
        env="PFX",
        parse=str,
        metavar="FILE",
    ),
    Option(
        "tls_passphrase",
        ("--passphrase",),
        "passphrase of `--pfx`, or of an encrypted `--key`",
        env="PFX_PASSPHRASE",
        parse=str,
        metavar="TEXT",
    ),
    Option(
        "rules.crypto_challenge",
        ("--disable-crypto-challenge", "--disableCryptoChallenge"),
        "let peers join without proving their peer id (default clients then refuse to join, "
        "see PROTOCOL.md)",
        env="DISABLE_CRYPTO_CHALLENGE",
        sets=False,
        shown="challenge on",
    ),
    Option(
        "rules.strict_multiaddr",
        ("--disable-strict-multiaddr", "--disableStrictMultiaddr"),
        "accept any multiaddr in `ss-join`, not only WebSocketStar addresses "
        "(`--strict-multiaddr` turns the check back on)",
        env="DISABLE_STRICT_MULTIADDR",
        sets=False,
        opposite=("--strict-multiaddr",),
        shown="strict on",
    ),
    Option(
        "metrics",
        ("--disable-metrics", "--disableMetrics"),
        "do not serve `/metrics`",
        env="DISABLE_METRICS",
        sets=False,
        shown="metrics on",
    ),
    Option(
        "announce_interval",
        ("--announce-interval",),
        "seconds between `ws-peer` re-announcements of each peer while the swarm is small",
        parse=_positive_float,
    ),
    Option(
        "announce_budget",
        ("--announce-budget",),
        "announcements each peer may receive per interval, at once and in rounds: a burst of "
        "joins is sampled, larger swarms get longer rounds (PROTOCOL.md §6); 0 = unlimited, "
        "like the reference",
        parse=_limit_int,
        to_field=_budget,
    ),
    Option(
        "rules.join_peers_limit",
        ("--join-peers-limit",),
        "peers a join ack lists at most; in a larger swarm it lists the most recent half and a "
        "random sample of the rest, and the others arrive through re-announcements",
        parse=_positive_int,
    ),
    Option(
        "dial_timeout",
        ("--dial-timeout",),
        "seconds a listener has to accept a relayed dial before the dialer gets "
        "`Dial timed out: the listener did not answer`",
        parse=_positive_float,
    ),
    Option(
        "max_message_size",
        ("--max-message-size",),
        "largest websocket message or polling body in bytes; a larger one closes only the "
        "sender's connection",
        parse=_positive_int,
    ),
    Option(
        "rules.max_addresses_per_socket",
        ("--max-addresses-per-connection",),
        "addresses one connection may join",
        parse=_positive_int,
    ),
    Option(
        "rules.max_pending_dials_per_socket",
        ("--max-dials-per-connection",),
        "dials one connection may have waiting for the listener's answer",
        parse=_positive_int,
    ),
    Option(
        "rules.challenge_lifetime",
        ("--challenge-lifetime",),
        "seconds a crypto-challenge nonce stays answerable",
        parse=_positive_float,
    ),
    Option(
        "rules.max_pending_challenges",
        ("--max-challenges-per-connection",),
        "unanswered crypto challenges one connection may hold",
        parse=_positive_int,
    ),
    Option(
        "limits.max_connections",
        ("--max-connections",),
        "connections served at once; more get HTTP 401 at the handshake (0 = no limit)",
        parse=_limit_int,
    ),
    Option(
        "limits.max_connections_per_ip",
        ("--max-connections-per-ip",),
        "connections from one client address (0 = no limit)",
        parse=_limit_int,
    ),
    Option(
        "limits.joins_per_ip_per_second",
        ("--joins-per-ip",),
        "sustained `ss-join` requests per second per address; bursts of 4x, or of two for "
        "every connection `--max-connections-per-ip` allows if that is more (a challenge join "
        "is two requests; 0 = no limit)",
        parse=_limit_float,
    ),
    Option(
        "limits.limit_loopback",
        ("--limit-loopback",),
        "apply the per-address limits to loopback clients too (they are exempt: a local test, "
        "or a reverse proxy on the same host without `--trust-proxy`); for tests of the limits",
        shown="off",
    ),
    Option(
        "limits.dials_per_ip_per_second",
        ("--dials-per-ip",),
        "sustained `ss-dial` requests per second per address, bursts of 4x (0 = no limit)",
        parse=_limit_float,
    ),
    Option(
        "limits.events_per_connection_per_second",
        ("--events-per-connection",),
        "sustained control events per second on one connection, bursts of 4x; relayed stream "
        "traffic is not counted; over it, requests are answered `Rate limit exceeded: too many "
        "requests on this connection` and not served (0 = no limit)",
        parse=_limit_float,
    ),
    Option(
        "trust_proxy",
        ("--trust-proxy",),
        "take the client address from the last `X-Forwarded-For` entry (only behind a reverse "
        "proxy you run)",
        shown="off",
    ),
    Option(
        "allow_peers_file",
        ("--allow-peers",),
        "private swarm: only the peer ids in FILE (one per line, `#` comments) may join; "
        "re-read on SIGHUP without dropping anyone; needs the crypto challenge",
        parse=str,
        metavar="FILE",
    ),
    Option(
        "cors_origins",
        ("--cors-origins",),
        "comma-separated origins browsers may use, for HTTP routes and the Socket.IO handshake "
        "(a foreign origin's handshake gets HTTP 400)",
        parse=_origins,
    ),
    Option(
        "shutdown_grace",
        ("--shutdown-grace",),
        "on SIGTERM/SIGINT: stop accepting, give dials in flight this many seconds, then close "
        "every connection and exit 0",
        parse=_seconds,
    ),
    Option(
        "relay_buffer_limit",
        ("--relay-buffer-limit",),
        "relay flow control's high-water mark in bytes: past it, the server stops reading "
        "from the client(s) feeding a receiver, or from a sender whose chunks wait for a "
        "receiver to accept, until they are below half of it",
        parse=_positive_int,
    ),
    Option(
        "relay_stall_timeout",
        ("--relay-stall-timeout",),
        "seconds a full receiver may take nothing before the streams feeding it are cut with "
        "`Relay buffer limit exceeded`, sent to both sides",
        parse=_positive_float,
    ),
    Option(
        "relay_memory_limit",
        ("--relay-memory-limit",),
        "relayed bytes the whole server may hold; past it every sender is held until half of "
        "it has gone out",
        parse=_positive_int,
    ),
    Option(
        "websocket_compression",
        ("--websocket-compression",),
        "negotiate permessage-deflate (relayed data is encrypted and does not compress)",
        shown="off",
    ),
    Option(
        "state_file",
        ("--state-file",),
        "once listening, write the scheme, address, port and instance id here (removed on a "
        "clean stop) for `wsstar-server healthcheck`, which then checks this very server",
        env="WSSTAR_STATE_FILE",
        parse=str,
        metavar="FILE",
    ),
    Option(
        "redis_url",
        ("--redis-url",),
        "make this process a node of the cluster whose directory is in this Redis "
        "(redis://HOST:PORT/DB, rediss:// for TLS); without it the server stands alone",
        env="REDIS_URL",
        parse=_redis_url,
        metavar="URL",
    ),
    Option(
        "node_ttl",
        ("--node-ttl",),
        "seconds after which a cluster node that stopped refreshing its key in Redis (killed, "
        "cut off) is dead to the others, and its peers vanish from their views",
        parse=_positive_float,
    ),
    Option(
        "workers",
        ("--workers",),
        "run this many server processes on one port (SO_REUSEPORT), each a node of the "
        "cluster in --redis-url, restarted if it dies",
        parse=_positive_int,
    ),
    Option(
        "link_host",
        ("--link-host",),
        "address this cluster node takes other nodes' relay links on",
        shown="--host",
        parse=str,
        metavar="HOST",
    ),
    Option(
        "link_port",
        ("--link-port",),
        "port of the relay link between cluster nodes (0: any free port, published in Redis; "
        "with --workers, worker i takes this port + i)",
        parse=_port,
    ),
    Option(
        "link_advertise",
        ("--link-advertise",),
        "host other cluster nodes reach this node's relay link at (this machine's name when "
        "--link-host is a wildcard address)",
        shown="--link-host",
        parse=str,
        metavar="HOST",
    ),
    Option(
        "log_level",
        ("--log-level",),
        "`debug`, `info`, `warning` or `error`, for wsstar's own lines (its dependencies log "
        "warnings and errors only, unless --log-dependencies)",
        env="LOG_LEVEL",
        parse=_log_level,
    ),
    Option(
        "log_dependencies",
        ("--log-dependencies",),
        "let dependencies (aiohttp, python-engineio, multiaddr) log at --log-level too, "
        "for a bug report",
        env="LOG_DEPENDENCIES",
        shown="off",
    ),
    Option(
        "log_format",
        ("--log-format",),
        "`text`, or `json`: one object per line with time, level, logger, message and, on "
        "join, dial, departure and refusal lines, event, address, peer, client and reason",
        env="LOG_FORMAT",
        parse=_log_format,
    ),
)
