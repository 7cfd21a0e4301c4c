"""Full garbage collections paced by their cost (wsstar.server.gcpace)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from wsstar.server import gcpace
from wsstar.server.gcpace import FullCollections


def test_a_full_collection_waits_for_a_quarter_more_heap_and_twenty_times_its_cost() -> None:
    pacing = FullCollections()
    assert pacing.due(1000, now=0.0)  # nothing collected yet
    pacing.collected(1000, now=10.0, took=0.5)
    assert not pacing.due(1200, now=100.0)  # grown, but not by a quarter
    assert not pacing.due(5000, now=19.9)  # grown, but too soon after
    assert pacing.due(1250, now=20.0)
    pacing.collected(800, now=20.0, took=0.01)  # garbage freed: the base shrinks
    assert pacing.due(1000, now=20.2)


async def test_the_pacer_takes_full_collections_over_and_gives_them_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gcpace, "CHECK_INTERVAL", 0.01)
    collected = asyncio.Event()

    def collect() -> int:
        collected.set()
        return 0

    monkeypatch.setattr(gc, "collect", collect)
    before = gc.get_threshold()
    task = asyncio.get_running_loop().create_task(gcpace.pace_full_collections())
    try:
        await asyncio.wait_for(collected.wait(), 5)
        young, middle, old = gc.get_threshold()
        assert (young, middle) == before[:2] and old > 10**9
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert gc.get_threshold() == before
