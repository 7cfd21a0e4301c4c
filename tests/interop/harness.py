"""Drive real libp2p-websocket-star nodes (tests/interop/agent.js) from asyncio."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
AGENT = HERE / "agent.js"
NODE_MODULES = HERE / "node_modules"
TIMEOUT = 30.0

Message = dict[str, Any]


class AgentError(AssertionError):
    """The agent answered a request with an error, or did not answer in time."""


class NodeAgent:
    """One ``node agent.js`` process hosting any number of named client nodes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self._next_id = 0
        self._replies: dict[int, asyncio.Future[Message]] = {}
        self.events: list[Message] = []
        self._event_added = asyncio.Condition()
        self._stderr: list[str] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self._err_reader = asyncio.get_running_loop().create_task(self._read_stderr())

    @classmethod
    async def start(cls, env: dict[str, str] | None = None) -> NodeAgent:
        """A new agent process; ``env`` is added to this process's environment."""
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(AGENT),
            cwd=str(HERE),
            env={**os.environ, **(env or {})},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )
        return cls(proc)

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def _read(self) -> None:
        assert self._proc.stdout is not None
        async for raw in self._proc.stdout:
            message = json.loads(raw)
            if "event" in message:
                async with self._event_added:
                    self.events.append(message)
                    self._event_added.notify_all()
            else:
                future = self._replies.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
        for future in self._replies.values():
            if not future.done():
                future.set_exception(AgentError(f"agent exited; stderr: {self.stderr_tail()}"))

    async def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        async for raw in self._proc.stderr:
            self._stderr.append(raw.decode(errors="replace"))
            del self._stderr[:-50]

    def stderr_tail(self) -> str:
        return "".join(self._stderr[-20:])

    async def request(self, cmd: str, timeout: float = TIMEOUT, **fields: Any) -> Message:
        """Send a command; return its reply, raising AgentError on an error reply."""
        reply = await self.try_request(cmd, timeout=timeout, **fields)
        if not reply["ok"]:
            raise AgentError(f"{cmd} failed: {reply['error']}")
        return reply

    async def try_request(self, cmd: str, timeout: float = TIMEOUT, **fields: Any) -> Message:
        """Send a command; return its reply whether it succeeded or not."""
        assert self._proc.stdin is not None
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        self._proc.stdin.write(
            json.dumps({"id": request_id, "cmd": cmd, **fields}).encode() + b"\n"
        )
        await self._proc.stdin.drain()
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError as exc:
            self._replies.pop(request_id, None)
            raise AgentError(
                f"{cmd} got no reply in {timeout} s; stderr: {self.stderr_tail()}"
            ) from exc

    async def next_event(
        self,
        kind: str,
        predicate: Callable[[Message], bool] = lambda _: True,
        timeout: float = TIMEOUT,
    ) -> Message:
        """The first event of ``kind`` matching ``predicate``, seen so far or later."""

        def find() -> Message | None:
            return next((e for e in self.events if e["event"] == kind and predicate(e)), None)

        async def wait() -> Message:
            async with self._event_added:
                await self._event_added.wait_for(lambda: find() is not None)
            found = find()
            assert found is not None
            return found

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError as exc:
            raise AgentError(
                f"no {kind} event in {timeout} s; stderr: {self.stderr_tail()}"
            ) from exc

    def uncaught(self) -> list[Message]:
        return [e for e in self.events if e["event"] == "uncaught"]

    async def stop(self) -> None:
        with contextlib.suppress(AgentError, ConnectionError):
            await self.request("exit", timeout=5)
        try:
            await asyncio.wait_for(self._proc.wait(), 5)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        for task in (self._reader, self._err_reader):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
