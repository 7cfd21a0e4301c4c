"""Server settings, with the defaults a public deployment should start from."""

from __future__ import annotations

from dataclasses import dataclass, field

from wsstar.server.admission import Limits
from wsstar.star.rendezvous import Settings


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 9090
    rules: Settings = field(default_factory=Settings)
    limits: Limits = field(default_factory=Limits)
    #: Take client addresses from X-Forwarded-For (only behind a reverse proxy).
    trust_proxy: bool = False
    metrics: bool = True
    #: Seconds between re-announcements of each joined address (reference: 10).
    announce_interval: float = 10.0
    #: Re-announcements each socket may receive per interval before rounds
    #: stretch (see AnnouncementSchedule); None reproduces the reference.
    announce_budget: int | None = 100
    #: Seconds a listener has to answer ``ss-incomming`` (the reference waits forever).
    dial_timeout: float = 15.0
    #: Largest websocket message / polling body accepted, in bytes.  libp2p
    #: relays chunks of at most a few hundred KiB; the reference's 1 MB limit
    #: sometimes cut real traffic.
    max_message_size: int = 4 * 1024 * 1024
    #: Relay flow control's high-water mark, in bytes: past it the server
    #: stops reading from whoever feeds a receiver (or from a sender whose
    #: chunks wait for receivers to accept), and reads again below half of it.
    relay_buffer_limit: int = 1024 * 1024
    #: The same in packets waiting for one receiver (tiny chunks cost more
    #: in packet objects than in bytes).
    relay_packet_limit: int = 2048
    #: Seconds a full receiver may take nothing before the streams feeding it
    #: are cut: holding its senders forever helps nobody.
    relay_stall_timeout: float = 30.0
    #: All relayed data the server holds at once, in bytes; past it every
    #: sender is held until half of it has gone out.
    relay_memory_limit: int = 256 * 1024 * 1024
    #: What may wait for one client, in bytes and packets, before it is
    #: disconnected: far above what flow control lets an honest client reach,
    #: so only a client that stopped reading gets there.
    send_queue_bytes: int = 16 * 1024 * 1024
    send_queue_packets: int = 8192
    #: permessage-deflate on websockets: off, because relayed libp2p traffic is
    #: encrypted and does not compress, and deflating it costs a third of the
    #: throughput.
    websocket_compression: bool = False
    #: Engine.IO heartbeat, seconds (engine.io 3.6 defaults, which v2 clients
    #: also use for their own timeout).
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    #: Origins allowed for browser clients; "*" like the reference.
    cors_origins: tuple[str, ...] = ("*",)
    #: File of peer ids admitted (a private swarm); reloaded on SIGHUP.
    allow_peers_file: str | None = None
    #: Seconds a stopping server lets dials in flight finish before closing.
    shutdown_grace: float = 10.0
    tls_cert: str | None = None
    tls_key: str | None = None
    #: A PKCS#12 file with the chain and key, instead of the two PEM files.
    tls_pfx: str | None = None
    #: The passphrase of the PKCS#12 file or of an encrypted PEM key.
    tls_passphrase: str | None = None
    #: Redis of the cluster this process is a node of (None: a single server).
    redis_url: str | None = None
    #: Seconds after which a node that stopped refreshing its liveness key is
    #: dead to the others.
    node_ttl: float = 10.0
    #: Server processes on one port, each a cluster node (needs ``redis_url``).
    workers: int = 1
    #: Where this node takes other nodes' links, for dials and relays between
    #: them: the address (None: ``host``) and the port (0: any free one).
    link_host: str | None = None
    link_port: int = 0
    #: The host other nodes reach the link at (None: ``link_host``, or this
    #: machine's name when that is a wildcard address).
    link_advertise: str | None = None
    log_level: str = "info"
    log_format: str = "text"
    #: Dependencies' own lines at ``log_level`` too (they stay at WARNING otherwise).
    log_dependencies: bool = False
    #: Where the server writes its address and instance id once listening,
    #: for ``wsstar-server healthcheck``.
    state_file: str | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert or self.tls_pfx else "http"
