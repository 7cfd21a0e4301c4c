"""The HTTP side: Socket.IO endpoint, landing page, health and metrics."""

from __future__ import annotations

import asyncio
import html
import signal
import ssl
import time
from importlib import resources
from string import Template

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from wsstar import __version__
from wsstar.server.engineio import (
    KEEPALIVE_TIMEOUT,
    LINGERING_TIME,
    ConnectionGate,
    GuardedSite,
)
from wsstar.server.metrics import CONTENT_TYPE, Metrics
from wsstar.server.service import RendezvousService
from wsstar.server.workers import PassingOn, Place

SERVICE_KEY: web.AppKey[RendezvousService] = web.AppKey("wsstar.service", RendezvousService)

#: Connections the kernel may hold before they are accepted.  aiohttp's 128
#: overflows when thousands of clients reconnect at once after a restart: the
#: kernel drops their SYNs and each retries 1, 3, 7 s later, which makes a
#: reconnect storm last far longer than the server needs.  Linux caps it at
#: ``net.core.somaxconn`` (4096 by default).
LISTEN_BACKLOG = 4096
_PAGE = Template(resources.files("wsstar").joinpath("static/index.html").read_text("utf-8"))


def plural(count: int, noun: str) -> str:
    """``noun`` as it reads after ``count`` on the landing page."""
    return noun if count == 1 else noun + "s"


def _advertised_address(request: web.Request) -> str:
    """The ws-star address of this server as the request reached it; the page's
    script refines it in the browser, this is the no-script fallback."""
    host = request.host.rsplit(":", 1)[0] if request.host else "127.0.0.1"
    port = request.url.port or (443 if request.secure else 80)
    proto = "ip4" if host.replace(".", "").isdigit() else "ip6" if ":" in host else "dns4"
    transport = "wss" if request.secure else "ws"
    return f"/{proto}/{host.strip('[]')}/tcp/{port}/{transport}/p2p-websocket-star"


async def _landing(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    peers = len(service.core.directory)
    connections = service.core.socket_count()
    body = _PAGE.substitute(
        version=__version__,
        address=html.escape(_advertised_address(request)),
        peers=peers,
        peers_noun=plural(peers, "peer"),
        connections=connections,
        connections_noun=plural(connections, "connection"),
        challenge="on" if service.config.rules.crypto_challenge else "off",
        strict="on" if service.config.rules.strict_multiaddr else "off",
        metrics_link=' · <a href="/metrics">metrics</a>' if service.config.metrics else "",
        cluster=_cluster_line(service),
    )
    return web.Response(text=body, content_type="text/html")


def _cluster_line(service: RendezvousService) -> str:
    """What the landing page says of the cluster this process is a node of."""
    bus = service.bus
    if bus is None:
        return ""
    return (
        f"<p>Cluster node <code>{html.escape(bus.node)}</code>: peers of every node are "
        f"listed above; Redis {'reachable' if bus.up else '<b>unreachable</b>'}.</p>"
    )


async def _health(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    core = service.core
    body: dict[str, object] = {
        "status": "ok",
        "version": __version__,
        "instance": service.instance,
        "uptime": round(time.time() - service.started, 1),
        "peers": len(core.directory),
        "local_peers": core.local_peer_count(),
        "connections": core.socket_count(),
    }
    bus = service.bus
    if bus is not None:
        # Still 200 while Redis is down: this node serves its own peers, and
        # a 503 from every node at once would make the balancer drop them all.
        body["cluster"] = {
            "node": bus.node,
            "redis": "up" if bus.up else "down",
            "nodes": bus.nodes,
        }
    return web.json_response(body)


def _cors(origins: tuple[str, ...]) -> Middleware:
    """CORS for the HTTP routes, by the same origin list the Socket.IO
    handshake enforces.  Like the reference (hapi ``cors: true``), an allowed
    origin is echoed back."""
    allow_all = "*" in origins

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        origin = request.headers.get("Origin")
        if (
            origin
            and (allow_all or origin in origins)
            and not request.path.startswith("/socket.io")
        ):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    return middleware


def create_app(service: RendezvousService, place: Place | None = None) -> web.Application:
    """An aiohttp application serving one rendezvous service; as one of
    several workers (``place``), passing requests for other workers'
    sessions to them.

    The service's ticker starts and its sockets close with the application, so
    ``web.run_app`` and test servers alike get a clean start and stop.
    """
    middlewares: list[Middleware] = [_cors(service.config.cors_origins)]
    passing = PassingOn(place) if place is not None else None
    if passing is not None:
        middlewares.insert(0, passing.middleware)
    app = web.Application(middlewares=middlewares)
    if passing is not None:
        app.on_startup.append(passing.open)
        app.on_cleanup.append(passing.close)
    app[SERVICE_KEY] = service
    service.sio.attach(app, socketio_path="socket.io")
    app.router.add_get("/", _landing)
    app.router.add_get("/health", _health)
    if service.config.metrics:
        metrics = Metrics(service)

        async def _metrics(request: web.Request) -> web.Response:
            return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

        app.router.add_get("/metrics", _metrics)

    async def _start(app: web.Application) -> None:
        await service.start()
        if service.config.allow_peers_file and hasattr(signal, "SIGHUP"):
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, service.reload_allowed_peers
            )

    async def _stop(app: web.Application) -> None:
        await service.stop()

    app.on_startup.append(_start)
    app.on_shutdown.append(_stop)
    return app


def make_runner(service: RendezvousService, place: Place | None = None) -> web.AppRunner:
    """The aiohttp runner of one service, with bounds on idle keep-alive and
    on reading bodies refused unread.

    A client that goes away cancels its request's handler: a long-poll it
    left parked, or a body aiohttp reads after an early refusal, would
    otherwise hold the request until its own timer ran out.
    """
    return web.AppRunner(
        create_app(service, place),
        handle_signals=False,
        access_log=None,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
        lingering_time=LINGERING_TIME,
        handler_cancellation=True,
    )


def make_site(
    runner: web.AppRunner,
    service: RendezvousService,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> GuardedSite:
    """The listening socket: every TCP connection counted per client address
    and given a deadline for its first request's headers.  ``reuse_port``
    lets the workers of ``--workers`` share it."""
    gate = ConnectionGate(
        service.admit_tcp,
        service.admission.tcp_closed,
        service.headers_too_slow,
        _open_files_limit(),
    )
    return GuardedSite(
        runner,
        gate,
        host=host,
        port=port,
        ssl_context=ssl_context,
        backlog=LISTEN_BACKLOG,
        reuse_port=reuse_port or None,
    )


def _open_files_limit() -> int:
    try:
        import resource
    except ImportError:  # not on this platform
        return 0
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def shutdown(runner: web.AppRunner, service: RendezvousService) -> None:
    """Stop accepting connections, let dials in flight finish, close the rest.

    The order matters: aiohttp stops reading from every connection as soon
    as its own cleanup begins, so the grace period for dials must come before
    it, while listeners can still answer.
    """
    for site in list(runner.sites):
        await site.stop()
    await service.drain()
    await runner.cleanup()
