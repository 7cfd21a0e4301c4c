"""The image's health check, run outside Docker exactly as the image runs it.

The command and the state file's variable are read from the Dockerfile, so
the test follows what the image really does.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.subject import free_port
from tests.support.tls import self_signed

TIMEOUT = 20.0
DOCKERFILE = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()


def image_check() -> tuple[list[str], str]:
    """The HEALTHCHECK command's arguments after the program, and the name
    of the state file variable the image sets."""
    command = re.search(r"HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])", DOCKERFILE)
    assert command, "the Dockerfile has no exec-form HEALTHCHECK"
    argv = json.loads(command[1])
    assert argv[0] == "wsstar-server"
    variable = re.search(r"\b(WSSTAR_STATE_FILE)=(\S+)", DOCKERFILE)
    assert variable, "the Dockerfile does not set WSSTAR_STATE_FILE"
    return argv[1:], variable[1]


async def run_check(env: dict[str, str]) -> tuple[int, str]:
    args, _ = image_check()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wsstar", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    return proc.returncode or 0, out.decode()


@dataclass
class Started:
    proc: asyncio.subprocess.Process
    #: The URL of the start-up line.
    url: str


@asynccontextmanager
async def server(env: dict[str, str], *args: str) -> AsyncIterator[Started]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wsstar", "--host", "127.0.0.1", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        assert line.startswith(b"Listening on: "), line
        yield Started(proc, line.decode().strip().removeprefix("Listening on: "))
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), TIMEOUT)


def image_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    _, variable = image_check()
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST", "CERT", "KEY")}
    env[variable] = str(tmp_path / "state.json")
    env.update(extra)
    return env


async def test_port_given_by_flag(tmp_path: Path) -> None:
    env = image_env(tmp_path)
    async with server(env, "--port", str(free_port())):
        code, out = await run_check(env)
    assert (code, out.split(":")[0]) == (0, "healthy"), out


async def test_port_given_by_environment(tmp_path: Path) -> None:
    env = image_env(tmp_path, PORT=str(free_port()))
    async with server(env):
        code, out = await run_check(env)
    assert code == 0, out


async def test_https_from_pem_files_and_from_pfx(tmp_path: Path) -> None:
    made = self_signed(tmp_path)
    for tls in (
        {"CERT": str(made.cert), "KEY": str(made.key)},
        {"PFX": str(made.pfx), "PFX_PASSPHRASE": "secret"},
    ):
        env = image_env(tmp_path, PORT=str(free_port()), **tls)
        async with server(env):
            code, out = await run_check(env)
        assert code == 0, out
        assert "https://127.0.0.1:" in out


async def test_a_stopped_server_is_unhealthy(tmp_path: Path) -> None:
    env = image_env(tmp_path)
    async with server(env, "--port", str(free_port())):
        pass
    assert not (tmp_path / "state.json").exists(), "a clean stop removes the state file"
    code, out = await run_check(env)
    assert code == 1
    assert "no server state" in out


async def test_another_server_on_the_port_is_not_taken_for_this_one(tmp_path: Path) -> None:
    env = image_env(tmp_path)
    port = free_port()
    async with server(env, "--port", str(port)) as started:
        started.proc.send_signal(signal.SIGKILL)  # the state file stays behind
        await asyncio.wait_for(started.proc.wait(), TIMEOUT)

    async def impostor(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "instance": "someone-else"})

    app = web.Application()
    app.router.add_get("/health", impostor)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        code, out = await run_check(env)
    finally:
        await runner.cleanup()
    assert code == 1
    assert "another server" in out


async def test_without_a_state_file_the_check_follows_its_own_options() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "WSSTAR_STATE_FILE"}
    async with server(env, "--port", str(port)):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wsstar", "healthcheck", "-h", "127.0.0.1", "--port", str(port),
            env=env, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, out


async def test_port_zero_names_the_port_it_got(tmp_path: Path) -> None:
    env = image_env(tmp_path)
    async with server(env, "--port", "0") as started:
        state = json.loads((tmp_path / "state.json").read_text())
        code, out = await run_check(env)
    assert state["port"] != 0
    assert started.url == f"http://127.0.0.1:{state['port']}"
    assert code == 0, out


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_an_ipv6_host_is_bracketed() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wsstar", "--host", "::1", "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), TIMEOUT)
    assert line.decode().strip() == f"Listening on: http://[::1]:{port}"
