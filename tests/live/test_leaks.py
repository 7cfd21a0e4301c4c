"""Connect / join / dial / disconnect cycles, some ending in a TCP reset
mid-dial, leave every internal table as it was."""

from __future__ import annotations

from tests.support.cycles import cycle
from tests.support.live import LiveServer, live_server
from tests.support.wait import eventually
from wsstar.server.admission import Limits

CYCLES = 150


def table_sizes(server: LiveServer) -> dict[str, int]:
    service = server.service
    core = service.core
    sio = service.sio
    return {
        "sockets": core.socket_count(),
        "addresses": len(core.directory),
        "owners": core.directory.owner_count(),
        "local sockets": len(core.directory.local_sockets()),
        "schedule": len(core.schedule),
        "streams": len(core.streams),
        "stream sockets": len(set(core.streams._by_source) | set(core.streams._by_sink)),
        "dials": core.pending_dials(),
        "challenges": core.pending_challenges(),
        "service clients": len(service._clients),
        "dial records": len(service._dials._records),
        "incoming acks": len(service._dials._by_incoming),
        "engine sessions": len(sio.eio.sockets),
        "socket.io rooms": sum(len(r) for r in sio.manager.rooms.get("/", {}).values()),
        "socket.io callbacks": len(sio.manager.callbacks),
        "socket.io environ": len(sio.environ),
        "v2 sessions": len(sio._v2),
        "chunk heads": len(sio._chunk_heads),
        "client addresses": len(sio._admitted),
        "admission connections": service.admission.connections,
    }


async def test_cycles_leave_no_trace() -> None:
    async with live_server(
        limits=Limits(joins_per_ip_per_second=0, dials_per_ip_per_second=0)
    ) as srv:
        empty = table_sizes(srv)
        for i in range(CYCLES):
            await cycle(srv.port, i)
        await eventually(lambda: table_sizes(srv) == empty, what="tables to empty")
        assert srv.service.core.stats.dials_total == CYCLES
