"""Each attack of the hardening work against a server process: the defence
holds, the server's memory, file descriptors and tasks come back near their
baseline, the honest pair using it meanwhile never fails, and SIGTERM still
ends it cleanly within the grace period."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.support.attacks import ATTACKS
from tests.support.subject import HonestPair, Subject

#: How far the server's memory may rise during an attack of a test's size.
PEAK_SLACK_MIB = 64.0
CLIENT = re.compile(r"from (127\.0\.\d+\.\d+)")
#: Lines of one each per join, dial (and its outcome) and departure: not refusals.
SUCCESS = re.compile(r"wsstar: (joined|left) |wsstar: dial (?!.* refused: )")
LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) wsstar: \S")


@pytest.mark.parametrize("name", ATTACKS)
async def test_an_attack_leaves_no_trace(name: str) -> None:
    attack = ATTACKS[name]
    async with Subject.running(*attack.flags) as server:
        async with HonestPair.running(server.port) as pair:
            baseline = await server.footprint()
            await attack.run(server.port, attack.test_size)
            after = await server.settles_to(baseline)
            # Held within bounds while it lasted, not only freed after.
            assert server.peak_mib() <= baseline.rss_mib + PEAK_SLACK_MIB, server.peak_mib()
            await pair.until(rounds=3)
            assert pair.failures == [], pair.failures
        print(f"{name}: baseline {baseline}; after {after}; {pair.rounds} echoes")
        print("\n".join(server.log))
        assert await server.stop() == 0
    # Every line is one of the server's own: client text forged none, and
    # nothing printed a traceback.  Refusals come aggregated, a line per
    # address and interval (and one with the count), so even a flood of
    # them logs little; joins, dials and departures are logged each.
    for line in server.log:
        assert LINE.match(line) or line == "Rendezvous server stopped", line
    refusals = Counter(
        m.group(1)
        for line in server.log
        if not SUCCESS.search(line) and (m := CLIENT.search(line)) is not None
    )
    assert max(refusals.values(), default=0) <= 3, refusals.most_common(3)
