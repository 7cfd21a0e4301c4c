"""``wsstar-server``: command line and environment, as the reference reads them.

Flags and environment variables of ``libp2p-websocket-star-rendezvous`` keep
working (``PORT``, ``HOST``, ``DISABLE_*``, ``KEY``/``CERT``, and the camelCase
flag spellings), so the server can replace the reference in an existing
deployment without touching its configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Mapping, Sequence

from aiohttp import web

from wsstar import __version__
from wsstar.errors import ConfigError
from wsstar.server.admission import Limits
from wsstar.server.config import ServerConfig
from wsstar.server.http import create_app, shutdown
from wsstar.server.service import RendezvousService
from wsstar.star.rendezvous import Settings

log = logging.getLogger("wsstar")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def env_flag(env: Mapping[str, str], name: str) -> bool:
    """A boolean environment variable.

    Unlike the reference, ``DISABLE_METRICS=0`` or ``=false`` means *not*
    disabled; anything unrecognised is an error rather than a silent "yes".
    """
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={env[name]!r} is not a boolean (use 1/0, true/false)")


def _positive(kind: type[int] | type[float]):  # type: ignore[no-untyped-def]
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wsstar-server",
        description="libp2p WebSocketStar rendezvous server",
    )
    p.add_argument("--version", action="version", version=f"wsstar {__version__}")
    p.add_argument("--port", "-p", type=int, help="TCP port (env PORT, default 9090)")
    p.add_argument("--host", help="address to bind (env HOST, default 0.0.0.0)")
    p.add_argument("--cert", help="TLS certificate chain, PEM (env CERT); serves wss/https")
    p.add_argument("--key", help="TLS private key, PEM (env KEY)")
    p.add_argument(
        "--disable-crypto-challenge",
        "--disableCryptoChallenge",
        action="store_true",
        default=None,
        help="let peers join without proving their peer id (env DISABLE_CRYPTO_CHALLENGE)",
    )
    strict = p.add_mutually_exclusive_group()
    strict.add_argument(
        "--strict-multiaddr",
        dest="strict_multiaddr",
        action="store_true",
        default=None,
        help="accept only WebSocketStar addresses in ss-join (the default)",
    )
    strict.add_argument(
        "--disable-strict-multiaddr",
        "--disableStrictMultiaddr",
        dest="strict_multiaddr",
        action="store_false",
        help="accept any multiaddr in ss-join (env DISABLE_STRICT_MULTIADDR)",
    )
    p.add_argument(
        "--disable-metrics",
        "--disableMetrics",
        action="store_true",
        default=None,
        help="do not serve /metrics (env DISABLE_METRICS)",
    )
    p.add_argument(
        "--announce-interval",
        type=_positive(float),
        default=10.0,
        help="seconds between ws-peer re-announcements of each peer (default 10)",
    )
    p.add_argument(
        "--announce-budget",
        type=int,
        default=100,
        help="re-announcements each peer may receive per interval before rounds stretch; "
        "0 = unlimited, every peer every interval like the reference (default 100)",
    )
    p.add_argument(
        "--dial-timeout",
        type=_positive(float),
        default=15.0,
        help="seconds a listener has to accept a relayed dial (default 15)",
    )
    p.add_argument(
        "--max-message-size",
        type=_positive(int),
        default=4 * 1024 * 1024,
        help="largest websocket message or polling body, bytes (default 4 MiB)",
    )
    p.add_argument(
        "--max-addresses-per-connection",
        type=_positive(int),
        default=16,
        help="addresses one connection may join (default 16)",
    )
    p.add_argument(
        "--max-dials-per-connection",
        type=_positive(int),
        default=64,
        help="dials one connection may have waiting for an answer (default 64)",
    )
    p.add_argument(
        "--challenge-lifetime",
        type=_positive(float),
        default=60.0,
        help="seconds a crypto-challenge nonce stays answerable (default 60)",
    )
    p.add_argument(
        "--max-challenges-per-connection",
        type=_positive(int),
        default=16,
        help="unanswered crypto challenges one connection may hold (default 16)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=50_000,
        help="connections served at once; more are refused (0 = no limit, default 50000)",
    )
    p.add_argument(
        "--max-connections-per-ip",
        type=int,
        default=256,
        help="connections from one client address (0 = no limit, default 256)",
    )
    p.add_argument(
        "--joins-per-ip",
        type=float,
        default=20.0,
        help="sustained ss-join requests per second from one address, bursts of 4x "
        "(a challenge join is two; 0 = no limit, default 20)",
    )
    p.add_argument(
        "--dials-per-ip",
        type=float,
        default=100.0,
        help="sustained ss-dial requests per second from one address, bursts of 4x "
        "(0 = no limit, default 100)",
    )
    p.add_argument(
        "--events-per-connection",
        type=float,
        default=100.0,
        help="sustained control events per second on one connection, bursts of 4x; "
        "relayed stream traffic is not counted (0 = no limit, default 100)",
    )
    p.add_argument(
        "--trust-proxy",
        action="store_true",
        help="take client addresses from X-Forwarded-For (only behind a reverse proxy)",
    )
    p.add_argument(
        "--allow-peers",
        metavar="FILE",
        help="private swarm: only these peer ids (one per line) may join; "
        "re-read on SIGHUP (needs the crypto challenge)",
    )
    p.add_argument(
        "--cors-origins",
        default="*",
        help="comma-separated origins browsers may connect from (default *, any)",
    )
    p.add_argument(
        "--shutdown-grace",
        type=float,
        default=10.0,
        help="seconds a stopping server lets dials in flight finish (default 10)",
    )
    p.add_argument(
        "--relay-buffer-limit",
        type=_positive(int),
        default=16 * 1024 * 1024,
        help="relayed bytes a client may leave unread before the stream feeding it "
        "is cut (default 16 MiB)",
    )
    p.add_argument(
        "--websocket-compression",
        action="store_true",
        help="negotiate permessage-deflate (off by default: relayed data is encrypted)",
    )
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity (env LOG_LEVEL, default info)",
    )
    return p


def parse_config(argv: Sequence[str], env: Mapping[str, str]) -> ServerConfig:
    """Flags win over the environment, which wins over defaults."""
    args = build_parser().parse_args(argv)
    try:
        port = args.port if args.port is not None else int(env.get("PORT") or 9090)
    except ValueError as exc:
        raise ConfigError(f"PORT={env['PORT']!r} is not a port number") from exc
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is out of range")
    limit_flags = (
        "announce_budget",
        "max_connections",
        "max_connections_per_ip",
        "joins_per_ip",
        "dials_per_ip",
        "events_per_connection",
    )
    for flag in limit_flags:
        if getattr(args, flag) < 0:
            raise ConfigError(f"--{flag.replace('_', '-')} must be 0 (no limit) or positive")
    no_challenge = args.disable_crypto_challenge or env_flag(env, "DISABLE_CRYPTO_CHALLENGE")
    strict = (
        args.strict_multiaddr
        if args.strict_multiaddr is not None
        else not env_flag(env, "DISABLE_STRICT_MULTIADDR")
    )
    no_metrics = args.disable_metrics or env_flag(env, "DISABLE_METRICS")
    if args.allow_peers and no_challenge:
        raise ConfigError("--allow-peers needs the crypto challenge: peers must prove their ids")
    if args.shutdown_grace < 0:
        raise ConfigError("--shutdown-grace must be 0 or positive")
    origins = tuple(o.strip() for o in args.cors_origins.split(",") if o.strip())
    if not origins:
        raise ConfigError("--cors-origins needs at least one origin, or *")
    cert = args.cert or env.get("CERT") or None
    key = args.key or env.get("KEY") or None
    if bool(cert) != bool(key):
        raise ConfigError("TLS needs both --cert and --key")
    return ServerConfig(
        host=args.host or env.get("HOST") or "0.0.0.0",
        port=port,
        rules=Settings(
            crypto_challenge=not no_challenge,
            strict_multiaddr=strict,
            challenge_lifetime=args.challenge_lifetime,
            max_pending_challenges=args.max_challenges_per_connection,
            max_addresses_per_socket=args.max_addresses_per_connection,
            max_pending_dials_per_socket=args.max_dials_per_connection,
        ),
        metrics=not no_metrics,
        announce_interval=args.announce_interval,
        announce_budget=args.announce_budget or None,
        dial_timeout=args.dial_timeout,
        max_message_size=args.max_message_size,
        limits=Limits(
            max_connections=args.max_connections,
            max_connections_per_ip=args.max_connections_per_ip,
            joins_per_ip_per_second=args.joins_per_ip,
            dials_per_ip_per_second=args.dials_per_ip,
            events_per_connection_per_second=args.events_per_connection,
        ),
        trust_proxy=args.trust_proxy,
        relay_buffer_limit=args.relay_buffer_limit,
        allow_peers_file=args.allow_peers,
        cors_origins=origins,
        shutdown_grace=args.shutdown_grace,
        websocket_compression=args.websocket_compression,
        tls_cert=cert,
        tls_key=key,
        log_level=args.log_level or env.get("LOG_LEVEL", "info").lower(),
    )


def _ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate/key: {exc}") from exc
    return context


def _raise_open_file_limit() -> None:
    """Lift the soft limit on open files to the hard one: every peer holds a
    socket, and the usual soft default of 1024 would cap the swarm there."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %s: %s", soft, exc)
            return
    log.info("open-file limit %s", hard if soft != hard else soft)


#: glibc's mallopt parameter number for the mmap threshold.
_M_MMAP_THRESHOLD = -3


def _return_large_buffers_to_the_system() -> None:
    """Fix glibc's mmap threshold at 64 KiB.

    A join ack carries the whole peer list (about 90 bytes a peer: ~1 MB
    with 10,000 peers), and a join storm keeps thousands of them in flight.
    glibc raises its mmap threshold each time such a buffer is freed, so
    later ones come from the heap, where a few small long-lived objects pin
    the pages and the process stays at its peak size for good.  With a fixed
    threshold large buffers are mapped and unmapped on their own, so memory
    follows the load back down.  Nothing to do on other C libraries.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
    except (OSError, AttributeError):
        return


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (the ``fast`` extra): it is markedly
    cheaper per websocket frame."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


async def _serve(
    config: ServerConfig, service: RendezvousService, ssl_context: ssl.SSLContext | None
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully."""
    runner = web.AppRunner(create_app(service), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    print(f"Listening on: {config.scheme}://{config.host}:{config.port}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("stopping")
    await shutdown(runner, service)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse_config(sys.argv[1:] if argv is None else argv, os.environ)
        if config.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"unknown log level {config.log_level!r}")
        ssl_context = _ssl_context(config)
    except ConfigError as exc:
        print(f"wsstar-server: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    _raise_open_file_limit()
    _return_large_buffers_to_the_system()
    try:
        service = RendezvousService(config)
    except ConfigError as exc:
        print(f"wsstar-server: {exc}", file=sys.stderr)
        return 2
    log.info(
        "crypto challenge %s, strict multiaddr %s, metrics %s",
        "on" if config.rules.crypto_challenge else "OFF",
        "on" if config.rules.strict_multiaddr else "off",
        "on" if config.metrics else "off",
    )
    with asyncio.Runner(loop_factory=_event_loop) as runner:
        try:
            runner.run(_serve(config, service, ssl_context))
        except OSError as exc:
            print(
                f"wsstar-server: cannot listen on {config.host}:{config.port}: {exc}",
                file=sys.stderr,
            )
            return 2
    print("Rendezvous server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
