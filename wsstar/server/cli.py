"""``wsstar-server``: the command line, start-up and shutdown.

The options themselves, with their environment variables and defaults, are in
:mod:`wsstar.server.options`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import ssl
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from wsstar import __version__
from wsstar.errors import ConfigError
from wsstar.server import health
from wsstar.server.config import ServerConfig
from wsstar.server.engineio import OneLineParseErrors
from wsstar.server.gcpace import pace_full_collections
from wsstar.server.health import Listening, remove_state, write_state
from wsstar.server.http import make_runner, make_site, shutdown
from wsstar.server.logtext import JsonLines
from wsstar.server.options import OPTIONS, env_flag, switch_value
from wsstar.server.service import RendezvousService
from wsstar.server.tls import ssl_context
from wsstar.server.workers import WORKER_ENV, Place, supervise

log = logging.getLogger("wsstar")


def build_parser() -> argparse.ArgumentParser:
    # -h is the host, as in the reference: a supervisor running it with
    # `-h 0.0.0.0` must get a server, not a help text and exit status 0.
    p = argparse.ArgumentParser(
        prog="wsstar-server",
        description="libp2p WebSocketStar rendezvous server",
        epilog="`wsstar-server healthcheck [options]` exits 0 when the server these options "
        "(or its --state-file) describe answers /health, 1 when it does not.",
        add_help=False,
    )
    p.add_argument("--help", action="help", help="show this help and exit")
    p.add_argument("--version", action="version", version=f"wsstar {__version__}")
    for option in OPTIONS:
        if option.parse is None:
            group = p.add_mutually_exclusive_group() if option.opposite else p
            group.add_argument(
                *option.flags,
                dest=option.dest,
                nargs="?",
                type=switch_value(option.sets),
                const=option.sets,
                default=None,
                metavar="true|false",
                help=option.help_text(),
            )
            if option.opposite:
                group.add_argument(
                    *option.opposite,
                    dest=option.dest,
                    action="store_const",
                    const=not option.sets,
                    help=argparse.SUPPRESS,
                )
        else:
            p.add_argument(
                *option.flags,
                dest=option.dest,
                type=option.parse,
                default=None,
                metavar=option.metavar or option.flags[0].lstrip("-").replace("-", "_").upper(),
                help=option.help_text(),
            )
    return p


def parse_config(argv: Sequence[str], env: Mapping[str, str]) -> ServerConfig:
    """Flags win over the environment, which wins over defaults."""
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    for option in OPTIONS:
        value = getattr(args, option.dest)
        if value is None and option.env is not None and env.get(option.env):
            value = _from_env(option.parse, option.sets, env, option.env)
        if value is None:
            continue
        values[option.field] = option.to_field(value) if option.to_field else value
    config = _build(values)
    if config.allow_peers_file and not config.rules.crypto_challenge:
        raise ConfigError("--allow-peers needs the crypto challenge: peers must prove their ids")
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("TLS needs both --cert and --key")
    if config.tls_pfx and config.tls_cert:
        raise ConfigError("give either --pfx or --cert with --key, not both")
    if config.workers > 1 and not config.redis_url:
        raise ConfigError("--workers needs --redis-url: the workers are one swarm through Redis")
    return config


def _from_env(parse: Any, sets: bool, env: Mapping[str, str], name: str) -> Any:
    if parse is None:
        return sets if env_flag(env, name) else not sets
    try:
        return parse(env[name])
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"{name}={env[name]!r}: {exc}") from exc


def _build(values: dict[str, Any]) -> ServerConfig:
    """A ServerConfig with ``values`` (dotted field names) in place of its defaults."""
    nested: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for name, value in values.items():
        group, dot, field = name.partition(".")
        if dot:
            nested.setdefault(group, {})[field] = value
        else:
            top[name] = value
    base = ServerConfig()
    for group, fields in nested.items():
        top[group] = dataclasses.replace(getattr(base, group), **fields)
    return dataclasses.replace(base, **top)


def _configure_logging(config: ServerConfig) -> None:
    """wsstar's lines at the level asked for; every dependency's at WARNING
    unless asked, so that `--log-level debug` does not bring in theirs
    (multiaddr writes two lines per parsed address)."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonLines()
        if config.log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    level = config.log_level.upper()
    logging.basicConfig(
        level=level if config.log_dependencies else logging.WARNING, handlers=[handler]
    )
    logging.getLogger("wsstar").setLevel(level)


def _raise_open_file_limit(max_connections: int) -> None:
    """Lift the soft limit on open files to the hard one: every peer holds a
    socket, and the usual soft default of 1024 would cap the swarm there.
    Warn when even that is short of what ``--max-connections`` promises:
    past it, new connections fail with EMFILE instead of a clear refusal."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = soft
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            limit = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %s: %s", soft, exc)
    log.info("open-file limit %s", limit)
    if max_connections and limit != resource.RLIM_INFINITY:
        needed = max_connections + FILES_BESIDES_CONNECTIONS
        if limit < needed:
            log.warning(
                "the open-file limit (%d) is below what --max-connections %d needs (about %d): "
                "raise it (ulimit -n, LimitNOFILE=, docker --ulimit nofile=) or lower "
                "--max-connections",
                limit,
                max_connections,
                needed,
            )


#: Files a server holds besides its connections (listening socket, event
#: loop, logs, the odd file it reads), with room to spare.
FILES_BESIDES_CONNECTIONS = 64

#: glibc's mallopt parameter number for the mmap threshold.
_M_MMAP_THRESHOLD = -3


def _return_large_buffers_to_the_system() -> None:
    """Fix glibc's mmap threshold at 64 KiB.

    A join ack in a swarm of a thousand peers is about 100 KB, and a join
    storm keeps thousands of them in flight.
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
    config: ServerConfig,
    service: RendezvousService,
    ssl_context: ssl.SSLContext | None,
    place: Place | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully.  As a
    worker (``place``), share the port and take passed-on requests too.
    Full garbage collections are paced for as long as it serves (gcpace)."""
    pacer = asyncio.get_running_loop().create_task(pace_full_collections())
    try:
        await _serve_until_stopped(config, service, ssl_context, place)
    finally:
        pacer.cancel()


async def _serve_until_stopped(
    config: ServerConfig,
    service: RendezvousService,
    ssl_context: ssl.SSLContext | None,
    place: Place | None,
) -> None:
    runner = make_runner(service, place)
    await runner.setup()
    site = make_site(runner, service, config.host, config.port, ssl_context, place is not None)
    try:
        await site.start()
        if place is not None:
            await make_site(runner, service, "127.0.0.1", place.ports[place.index]).start()
    except OSError:
        await runner.cleanup()
        raise
    # Before anything says the server is ready: a SIGTERM sent as soon as it
    # does must stop it cleanly, not kill it with its state file left behind.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    if config.state_file and place is None:
        write_state(
            config.state_file,
            Listening(config.scheme, config.host, site.port, service.instance),
        )
    # The bound port, not the one asked for (0 picks a free one), with an
    # IPv6 host bracketed; printed last, as the sign that all is ready.
    print(f"Listening on: {site.name}", flush=True)
    await stopping.wait()
    log.info("stopping")
    if config.state_file and place is None:
        remove_state(config.state_file, service.instance)
    await shutdown(runner, service)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args[:1] == ["healthcheck"] else None
    try:
        config = parse_config(args, os.environ)
        if command == "healthcheck":
            return health.main(config)
        context = ssl_context(config)
    except ConfigError as exc:
        print(f"wsstar-server: {exc}", file=sys.stderr)
        return 2
    _configure_logging(config)
    place = Place.from_env(os.environ.get(WORKER_ENV))
    if config.workers > 1 and place is None:
        state = (config.state_file, config.scheme) if config.state_file else None
        return supervise(
            args, config.host, config.port, config.workers, config.shutdown_grace, state
        )
    if place is not None and config.link_port:
        # One link port each: the given one for worker 0, the next for 1, ...
        config = dataclasses.replace(config, link_port=config.link_port + place.index)
    logging.getLogger("aiohttp.server").addFilter(OneLineParseErrors())
    _raise_open_file_limit(config.limits.max_connections)
    _return_large_buffers_to_the_system()
    try:
        service = RendezvousService(config, session_prefix=place.prefix if place else "")
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
            runner.run(_serve(config, service, context, place))
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
