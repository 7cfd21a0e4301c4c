"""wsstar-server as a process: start-up line, TLS, clean exit on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import resource
import signal
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.support.subject import free_port
from tests.support.tls import self_signed

TIMEOUT = 20.0


async def start(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wsstar",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
    return proc, line.decode().strip()


async def stop(proc: asyncio.subprocess.Process, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    return proc.returncode or 0, out.decode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_starts_serves_and_stops_cleanly(sig: int) -> None:
    port = free_port()
    proc, first = await start("--host", "127.0.0.1", "--port", str(port))
    try:
        assert first == f"Listening on: http://127.0.0.1:{port}"
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/health") as r,
        ):
            assert r.status == 200
    finally:
        code, rest = await stop(proc, sig)
    assert code == 0
    assert "Rendezvous server stopped" in rest


async def test_tls(tmp_path: Path) -> None:
    made = self_signed(tmp_path)
    cert, key = made.cert, made.key
    port = free_port()
    proc, first = await start(
        "--host", "127.0.0.1", "--port", str(port), "--cert", str(cert), "--key", str(key)
    )
    try:
        assert first == f"Listening on: https://127.0.0.1:{port}"
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        async with aiohttp.ClientSession() as http:
            async with http.get(f"https://127.0.0.1:{port}/health", ssl=context) as r:
                assert r.status == 200
            ws_url = f"https://127.0.0.1:{port}/socket.io/?EIO=3&transport=websocket"
            async with http.ws_connect(ws_url, ssl=context) as ws:
                assert (await asyncio.wait_for(ws.receive_str(), TIMEOUT)).startswith("0{")
    finally:
        code, _ = await stop(proc, signal.SIGTERM)
    assert code == 0


async def test_bad_configuration_exits_with_a_message() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wsstar",
        "--cert",
        "/nonexistent.pem",
        "--key",
        "/nonexistent.key",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 2
    assert b"cannot read --cert /nonexistent.pem: No such file or directory" in err


async def test_requests_aiohttp_cannot_parse_log_one_line_each() -> None:
    port = free_port()
    proc, _ = await start("--host", "127.0.0.1", "--port", str(port))
    try:
        for request in (
            b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # URL too long
            b"GET / HTTP/1.1\r\nX: " + b"b" * 20_000 + b"\r\n\r\n",  # header too long
            b"\x16\x03\x01 not http\r\n\r\n",  # TLS or garbage on a plain port
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            assert (await asyncio.wait_for(reader.readline(), TIMEOUT)).startswith(b"HTTP/1.")
            writer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    log = err.decode()
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "Error handling request" in line]
    assert len(lines) >= 2 and all("Got more than" in line for line in lines)


@pytest.mark.parametrize(("max_connections", "warned"), [("1000", True), ("100", False)])
async def test_an_open_file_limit_short_of_max_connections_is_warned_of(
    max_connections: str, warned: bool
) -> None:
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wsstar", "--host", "127.0.0.1", "--port", str(port),
        "--max-connections", max_connections,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=low_limit,
    )  # fmt: skip
    assert proc.stdout is not None
    await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    line = f"the open-file limit (512) is below what --max-connections {max_connections} needs"
    assert (line in err.decode()) is warned, err.decode()
