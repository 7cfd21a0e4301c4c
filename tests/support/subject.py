"""A wsstar server process under attack, and an honest pair using it meanwhile.

The server runs in a process of its own, so that its resident memory, file
descriptors and tasks are its own and can be compared with a baseline.  The
honest pair relays an echo through it without pause and a newcomer joins
every two seconds; any failure is recorded, so that a test can say the
attack never reached them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from tests.support.eio3 import TIMEOUT, Eio3Client, joined

#: Seconds within which a stopped server must have exited: its default
#: shutdown grace (10 s) and a little to close everything.
STOP_WITHIN = 12.0
STREAM = "honest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclasses.dataclass(frozen=True)
class Footprint:
    rss_mib: float
    fds: int
    tasks: int

    def __str__(self) -> str:
        return f"RSS {self.rss_mib:.1f} MiB, {self.fds} fds, {self.tasks} tasks"


@dataclasses.dataclass
class Subject:
    """``python -m wsstar`` on 127.0.0.1 and a free port."""

    proc: asyncio.subprocess.Process
    port: int
    #: Every line the server logged, as it arrives (read without pause, so
    #: that a full pipe never blocks the server).
    log: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, *flags: str) -> AsyncIterator[Subject]:
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wsstar",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *flags,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        subject = cls(proc, port)
        assert proc.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            while not (line := (await proc.stdout.readline()).decode()).startswith("Listening"):
                assert line, subject.log
                subject.log.append(line.rstrip("\n"))
        reader = asyncio.ensure_future(subject._read_log())
        try:
            yield subject
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            reader.cancel()

    async def _read_log(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.log.append(line.decode(errors="replace").rstrip("\n"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def metrics(self) -> dict[str, float]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.url + "/metrics", timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as resp,
        ):
            page = await resp.text()
        values: dict[str, float] = {}
        for line in page.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    async def footprint(self) -> Footprint:
        rss, fds = _resources(self.proc.pid)
        tasks = int((await self.metrics())["wsstar_tasks"])
        return Footprint(rss, fds, tasks)

    def peak_mib(self) -> float:
        """The server's resident high-water mark, MiB (it started smaller
        than any baseline, so this is the peak of what it was put through)."""
        return _status_mib(self.proc.pid, "VmHWM")

    async def settles_to(
        self,
        baseline: Footprint,
        rss_slack_mib: float = 32.0,
        slack: int = 8,
        timeout: float = 30.0,
    ) -> Footprint:
        """Wait until the server's footprint is back near ``baseline``; fail
        with the figures if it is not within ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            now = await self.footprint()
            if (
                now.rss_mib <= baseline.rss_mib + rss_slack_mib
                and now.fds <= baseline.fds + slack
                and now.tasks <= baseline.tasks + slack
            ):
                return now
            if loop.time() > deadline:
                raise AssertionError(f"still at {now} after the attack; baseline {baseline}")
            await asyncio.sleep(0.25)

    async def stop(self) -> int:
        """SIGTERM, and the exit status, which must come within the grace."""
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), STOP_WITHIN)


def _status_mib(pid: int, field: str) -> float:
    """A memory field of /proc/<pid>/status (which answers at once), MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines())
    return int(fields[field].split()[0]) / 1024


def _resources(pid: int) -> tuple[float, int]:
    """A process's resident MiB and open file descriptors, counted before
    /metrics is asked: that connection is one more."""
    return _status_mib(pid, "VmRSS"), len(os.listdir(f"/proc/{pid}/fd"))


@dataclasses.dataclass
class HonestPair:
    """Two peers echoing through the server, and a newcomer joining every
    two seconds, until stopped."""

    port: int
    rounds: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    #: Seconds each echo took, for the bench's figures.
    latencies: list[float] = dataclasses.field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, port: int) -> AsyncIterator[HonestPair]:
        pair = cls(port)
        (a, addr_a), (b, addr_b) = await joined(port), await joined(port)
        a.collect_chunks = b.collect_chunks = True
        try:
            dial = asyncio.ensure_future(a.call("ss-dial", addr_a, addr_b, STREAM))
            await b.next_event("ss-incomming")
            await b.accept_dial(STREAM)
            assert await asyncio.wait_for(dial, TIMEOUT) == []
            await a.emit(f"socket.io-pull-stream.accept.{STREAM}.listener")
            pair._task = asyncio.ensure_future(pair._run(a, b))
            await pair.until(rounds=3)
            yield pair
        finally:
            if pair._task is not None:
                pair._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pair._task
            await a.close()
            await b.close()

    async def until(self, rounds: int) -> None:
        """Wait until ``rounds`` more echoes went through (or one failed)."""
        target = self.rounds + rounds
        async with asyncio.timeout(TIMEOUT * rounds):
            while self.rounds < target and not self.failures:  # noqa: ASYNC110
                await asyncio.sleep(0.02)

    async def _run(self, a: Eio3Client, b: Eio3Client) -> None:
        loop = asyncio.get_running_loop()
        next_join = loop.time()
        while not self.failures:
            try:
                started = loop.time()
                await self._echo(a, b)
                self.latencies.append(loop.time() - started)
                if loop.time() >= next_join:
                    next_join = loop.time() + 2
                    newcomer, _ = await asyncio.wait_for(joined(self.port), TIMEOUT)
                    await newcomer.close()
            except Exception as exc:  # whatever it was, the honest pair failed
                self.failures.append(f"round {self.rounds}: {exc!r}")
                return
            await asyncio.sleep(0.05)

    async def _echo(self, a: Eio3Client, b: Eio3Client) -> None:
        payload = self.rounds.to_bytes(4, "big") * 256
        sent = len(b.chunks.get(f"{STREAM}.dialer", ()))
        await a.emit(f"socket.io-pull-stream.queue.{STREAM}.dialer", payload)
        await _arrives(b, f"{STREAM}.dialer", sent + 1)
        got = b.chunks[f"{STREAM}.dialer"][-1]
        await b.emit(f"socket.io-pull-stream.queue.{STREAM}.listener", got)
        await _arrives(a, f"{STREAM}.listener", sent + 1)
        if a.chunks[f"{STREAM}.listener"][-1] != payload:
            raise AssertionError("the echo came back changed")
        self.rounds += 1


async def _arrives(client: Eio3Client, stream: str, count: int) -> None:
    async with asyncio.timeout(TIMEOUT):
        while len(client.chunks.get(stream, ())) < count:
            if client.closed.is_set():
                raise ConnectionError("the server closed an honest connection")
            await asyncio.sleep(0.005)
