"""The canary: every private hook of python-socketio, python-engineio and
aiohttp that wsstar/server/engineio/ uses is still there, as expected.

When an upgrade renames or changes one of them, this is the test that says
which, instead of a session failing somewhere in the middle of a relay.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import engineio
import pytest
import socketio

from wsstar.server.engineio import compat

ROOT = Path(__file__).resolve().parents[2]


def hook_problems() -> list[str]:
    """Every hook in compat.HOOKS that is missing or has other parameters."""
    out = []
    for hook in compat.HOOKS:
        target = getattr(hook.holder, hook.name, None)
        where = f"{hook.holder.__module__}.{hook.holder.__qualname__}.{hook.name}"
        if target is None:
            out.append(f"{where} is gone")
            continue
        parameters = tuple(inspect.signature(target).parameters)
        if parameters != hook.parameters:
            out.append(f"{where} takes {parameters}, not {hook.parameters}")
    return out


def test_every_hook_exists_with_the_expected_parameters() -> None:
    assert hook_problems() == []


def test_a_renamed_hook_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(socketio.AsyncServer, "_handle_ack")
    assert hook_problems() == ["socketio.async_server.AsyncServer._handle_ack is gone"]


def test_a_changed_signature_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    async def changed(self: object, eio_sid: str, data: object, extra: object) -> None:
        """A stand-in with one parameter more."""

    monkeypatch.setattr(socketio.AsyncServer, "_handle_eio_message", changed)
    [problem] = hook_problems()
    assert "_handle_eio_message takes" in problem


def test_versions_outside_the_supported_range_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(compat.SUPPORTED, "aiohttp", ("1.0", "2.0"))
    with pytest.raises(ImportError, match=r"wsstar needs aiohttp >=1.0,<2.0 \(found 3\."):
        compat.check_versions()


def test_every_private_attribute_is_set_by_the_library() -> None:
    instances = {
        engineio.AsyncServer: engineio.AsyncServer(async_mode="aiohttp"),
        socketio.AsyncServer: socketio.AsyncServer(async_mode="aiohttp"),
        socketio.AsyncManager: socketio.AsyncManager(),
    }
    for holder, names in compat.ATTRIBUTES:
        missing = [name for name in names if not hasattr(instances[holder], name)]
        assert missing == [], f"{holder.__qualname__} no longer sets {missing}"
    for method, name in compat.SET_BY:
        assert f"self.{name}" in inspect.getsource(method), f"{method} no longer uses {name}"


def test_supported_versions_are_those_pyproject_asks_for() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([a-z-]+)>=([\d.]+),<([\d.]+)", requirement)
        if match:
            pins[match.group(1)] = (match.group(2), match.group(3))
    for dist, supported in compat.SUPPORTED.items():
        assert pins[dist] == supported, dist
