"""Fixtures for the real-client tests: a rendezvous server process and node agents.

The server under test is wsstar by default; WSSTAR_INTEROP_TARGET=reference
runs the same tests against the JavaScript reference server, to check that the
tests describe the reference's behaviour and not only ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shlex
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.interop.harness import NODE_MODULES, NodeAgent

STARTUP_TIMEOUT = 30.0
TARGET = os.environ.get("WSSTAR_INTEROP_TARGET", "wsstar")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "wsstar_only(why): behaviour the reference server does not have"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("wsstar_only")
        if marker is not None and TARGET == "reference":
            item.add_marker(pytest.mark.skip(reason=f"reference differs: {marker.args[0]}"))


@dataclasses.dataclass
class Rendezvous:
    host: str
    port: int

    @property
    def ws_star_addr(self) -> str:
        return f"/ip4/{self.host}/tcp/{self.port}/ws/p2p-websocket-star"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _wait_until_serving(proc: asyncio.subprocess.Process, port: int, path: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT
    async with aiohttp.ClientSession() as http:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"server exited with status {proc.returncode} before serving")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
                    if resp.status < 500:
                        return
            if loop.time() > deadline:
                raise RuntimeError(f"server not serving on port {port} after {STARTUP_TIMEOUT} s")
            await asyncio.sleep(0.05)


def _server_command(port: int) -> tuple[list[str], dict[str, str], str]:
    env = dict(os.environ)
    if TARGET == "reference":
        env.update(PORT=str(port), HOST="127.0.0.1", DISABLE_METRICS="1")
        bin_js = NODE_MODULES / "libp2p-websocket-star-rendezvous" / "src" / "bin.js"
        # Its "/" route answers once hapi is up; crypto challenge and strict
        # multiaddr are on by default from its CLI, as in wsstar's.
        return ["node", str(bin_js)], env, "/"
    extra = shlex.split(os.environ.get("WSSTAR_INTEROP_ARGS", ""))
    args = [sys.executable, "-m", "wsstar", "--host", "127.0.0.1", "--port", str(port)]
    return [*args, "--log-level", "info", *extra], env, "/health"


@pytest.fixture
async def rendezvous() -> AsyncIterator[Rendezvous]:
    if shutil.which("node") is None:
        pytest.fail("node is not installed: the interop tests need Node.js 20")
    if not (NODE_MODULES / "libp2p-websocket-star").is_dir():
        pytest.fail("tests/interop/node_modules is missing: run scripts/test (it runs npm ci)")
    port = _free_port()
    command, env, ready_path = _server_command(port)
    # A file, not a pipe: nobody reads the log while the test runs, and a
    # full pipe would block the server.
    with tempfile.TemporaryFile() as log:
        proc = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log
        )
        try:
            await _wait_until_serving(proc, port, ready_path)
            yield Rendezvous("127.0.0.1", port)
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        log.seek(0)
        output = log.read().decode(errors="replace")
        if "Traceback" in output:
            pytest.fail("server logged a traceback:\n" + output[-4000:])


@pytest.fixture
async def agent() -> AsyncIterator[NodeAgent]:
    running = await NodeAgent.start()
    try:
        yield running
    finally:
        await running.stop()
    assert running.uncaught() == [], running.uncaught()
