"""Prometheus metrics.

The seven ``rendezvous_*`` series keep the reference's names and HELP texts
(typo included) so existing dashboards and alerts keep working.  They are
written out here rather than through prometheus-client's Counter type because
the client library appends ``_total`` to counter metadata, which would rename
``rendezvous_dials_total_success`` in its HELP/TYPE lines.  Everything else
(process metrics and wsstar's own gauges) goes through prometheus-client.

All values are read from the live state at scrape time, so counting costs the
request paths nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from wsstar.server.service import RendezvousService
from wsstar.star.rendezvous import Rendezvous

CONTENT_TYPE = CONTENT_TYPE_LATEST

_REFERENCE_SERIES: tuple[tuple[str, str, str, Callable[[Rendezvous], int]], ...] = (
    ("rendezvous_peers", "gauge", "peers online now", lambda r: len(r.directory)),
    (
        "rendezvous_dials_total_success",
        "counter",
        "sucessfully completed dials since server started",
        lambda r: r.stats.dials_success,
    ),
    (
        "rendezvous_dials_total_failure",
        "counter",
        "failed dials since server started",
        lambda r: r.stats.dials_failure,
    ),
    (
        "rendezvous_dials_total",
        "counter",
        "all dials since server started",
        lambda r: r.stats.dials_total,
    ),
    (
        "rendezvous_joins_total_success",
        "counter",
        "sucessfully completed joins since server started",
        lambda r: r.stats.joins_success,
    ),
    (
        "rendezvous_joins_total_failure",
        "counter",
        "failed joins since server started",
        lambda r: r.stats.joins_failure,
    ),
    (
        "rendezvous_joins_total",
        "counter",
        "all joins since server started",
        lambda r: r.stats.joins_total,
    ),
)


class _StateCollector(Collector):
    """wsstar's own gauges, beyond what the reference exported."""

    def __init__(self, service: RendezvousService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        service = self._service
        core = service.core
        refused = CounterMetricFamily(
            "wsstar_refused",
            "connections and requests refused by a limit, by limit",
            labels=["limit"],
        )
        for kind, count in service.admission.refused.items():
            refused.add_metric([kind], count)
        yield refused
        yield GaugeMetricFamily(
            "wsstar_connected_sockets", "Socket.IO connections open now", core.socket_count()
        )
        yield GaugeMetricFamily(
            "wsstar_relay_streams", "relayed half-streams open now", len(core.streams)
        )
        yield CounterMetricFamily(
            "wsstar_relay_overflows",
            "relayed streams cut because their receiver took nothing for the stall timeout, "
            "or never accepted",
            value=core.streams.overflows,
        )
        yield GaugeMetricFamily(
            "wsstar_relay_paused_senders",
            "connections not read from now because what they relay waits (flow control)",
            len(service.flow),
        )
        yield GaugeMetricFamily(
            "wsstar_queued_bytes",
            "bytes queued for all clients and not yet taken by their transports, plus relayed "
            "bytes held for receivers that have not accepted",
            service.sio.queued_bytes + core.streams.held_total(),
        )
        yield CounterMetricFamily(
            "wsstar_slow_clients_disconnected",
            "clients disconnected because they stopped reading what was sent to them",
            value=service.sio.send_queue_overflows,
        )
        yield CounterMetricFamily(
            "wsstar_announcements_skipped",
            "ws-peer deliveries skipped because their client was too far behind",
            value=service.fanout.skipped,
        )
        yield CounterMetricFamily(
            "wsstar_announcements_deferred",
            "announcements not sent because their recipient's budget was spent "
            "or its early replay was due (it hears of those addresses there or in "
            "a later re-announcement round)",
            value=service.fanout.deferred,
        )
        yield GaugeMetricFamily(
            "wsstar_pending_dials", "dials waiting for the listener's answer", core.pending_dials()
        )
        yield GaugeMetricFamily(
            "wsstar_pending_challenges",
            "crypto challenges issued and not yet answered",
            core.pending_challenges(),
        )
        yield GaugeMetricFamily(
            "wsstar_local_peers",
            "addresses joined through this process (rendezvous_peers counts the whole swarm, "
            "every node of a cluster included)",
            core.local_peer_count(),
        )
        bus = service.bus
        if bus is not None:
            yield GaugeMetricFamily(
                "wsstar_cluster_nodes", "live nodes of the cluster, this one included", bus.nodes
            )
            yield GaugeMetricFamily(
                "wsstar_cluster_redis_up",
                "1 while this node is subscribed and in step with Redis, 0 while it serves its "
                "own peers only",
                int(bus.up),
            )
            yield CounterMetricFamily(
                "wsstar_cluster_bus_errors",
                "Redis errors and unreadable messages on the cluster bus",
                value=bus.errors,
            )
        crossing = service.crossing
        if crossing is not None:
            dials = CounterMetricFamily(
                "wsstar_cluster_dials",
                "dials between sockets of this node and another's: out, dialed from here; in, "
                "asked of a socket here",
                labels=["direction"],
            )
            dials.add_metric(["out"], crossing.dials_out)
            dials.add_metric(["in"], crossing.dials_in)
            yield dials
            relayed = CounterMetricFamily(
                "wsstar_cluster_relayed_bytes",
                "relayed bytes sent to and received from other nodes over their links",
                labels=["direction"],
            )
            relayed.add_metric(["out"], crossing.links.bytes_out)
            relayed.add_metric(["in"], crossing.links.bytes_in)
            yield relayed
            yield GaugeMetricFamily(
                "wsstar_cluster_link_queued_bytes",
                "bytes waiting to go out on the links to other nodes",
                crossing.links.queued(),
            )
            yield GaugeMetricFamily(
                "wsstar_cluster_relay_routes",
                "streams and dials of this node's sockets that another node keeps",
                len(core.routes),
            )
        yield GaugeMetricFamily(
            "wsstar_tasks",
            "asyncio tasks alive now: requests, connections and timers (a leak shows here first)",
            len(asyncio.all_tasks()),
        )


class Metrics:
    """Renders the ``/metrics`` page for one server."""

    def __init__(self, service: RendezvousService) -> None:
        self._core = service.core
        # A registry per server, so that several servers in one process (tests,
        # embedding) never collide on metric names.
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.registry.register(_StateCollector(service))

    def render(self) -> bytes:
        lines = []
        for name, kind, help_text, read in _REFERENCE_SERIES:
            lines.append(
                f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n{name} {read(self._core)}\n"
            )
        return "".join(lines).encode() + generate_latest(self.registry)
