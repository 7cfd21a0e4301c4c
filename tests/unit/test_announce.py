import pytest

from wsstar.directory import SocketId
from wsstar.star.announce import AnnouncementBudget, AnnouncementSchedule


def walk(s: AnnouncementSchedule, start: float, end: float, tick: float = 0.25) -> list[str]:
    due: list[str] = []
    t = start
    while t < end - 1e-9:
        t += tick
        due.extend(s.pop_due(t))
    return due


def test_each_address_once_per_interval_in_join_order() -> None:
    s = AnnouncementSchedule(10.0)
    for i in range(4):
        s.add(f"/p{i}", now=0.0)
    assert walk(s, 0.0, 10.0) == ["/p0", "/p1", "/p2", "/p3"]
    assert walk(s, 10.0, 20.0) == ["/p0", "/p1", "/p2", "/p3"]


def test_a_new_address_comes_about_one_round_after_its_join() -> None:
    s = AnnouncementSchedule(10.0)
    s.add("/a", now=0.0)
    s.pop_due(0.0)
    assert walk(s, 0.0, 9.75) == []
    assert walk(s, 9.75, 10.0) == ["/a"]


def test_removed_and_readded_addresses_are_announced_once_per_round() -> None:
    s = AnnouncementSchedule(10.0)
    s.add("/a", now=0.0)
    s.add("/b", now=0.0)
    s.remove("/a")
    s.add("/b", now=0.0)  # a re-join moves it to the back, it does not double it
    assert walk(s, 0.0, 30.0) == ["/b", "/b", "/b"]
    assert len(s) == 1
    assert "/a" not in s._current


def test_a_stalled_ticker_skips_missed_rounds_instead_of_bursting() -> None:
    s = AnnouncementSchedule(1.0)
    s.add("/a", now=0.0)
    assert s.pop_due(100.0) == ["/a"]
    assert s.pop_due(100.5) == []
    assert s.pop_due(101.0) == ["/a"]


def test_churn_does_not_grow_the_ring_without_bound() -> None:
    s = AnnouncementSchedule(10.0)
    for i in range(10_000):
        s.add(f"/p{i}", now=float(i))
        s.remove(f"/p{i}")
    assert len(s) == 0
    assert len(s._ring) <= 130
    assert s.pop_due(20_000.0) == []


def test_unlimited_budget_keeps_the_reference_rate() -> None:
    s = AnnouncementSchedule(10.0, budget=None)
    for i in range(500):
        s.add(f"/p{i}", now=0.0)
    assert s.round_length() == 10.0
    assert sorted(walk(s, 0.0, 10.0)) == sorted(f"/p{i}" for i in range(500))


def test_small_swarms_keep_the_plain_interval_even_with_a_budget() -> None:
    s = AnnouncementSchedule(10.0, budget=100)
    for i in range(101):
        s.add(f"/p{i}", now=0.0)
    assert s.round_length() == 10.0
    assert len(walk(s, 0.0, 10.0)) == 101


def test_large_swarms_stretch_the_round_to_respect_the_budget() -> None:
    budget, n = 100, 1001
    s = AnnouncementSchedule(10.0, budget=budget)
    for i in range(n):
        s.add(f"/p{i}", now=0.0)
    assert s.round_length() == 100.0  # 10 s * (1001 - 1) / 100
    seen: dict[str, int] = {}
    for start in range(0, 200, 10):
        due = walk(s, float(start), start + 10.0)
        # Each socket hears about len(due) peers in this interval.
        assert budget - 1 <= len(due) <= budget + 1
        for address in due:
            seen[address] = seen.get(address, 0) + 1
    # Every peer exactly once per 100 s round.
    assert set(seen) == {f"/p{i}" for i in range(n)}
    assert set(seen.values()) == {2}


def test_the_pace_follows_the_number_of_peers_at_once() -> None:
    s = AnnouncementSchedule(10.0, budget=10)
    for i in range(101):
        s.add(f"/p{i}", now=0.0)
    assert s.round_length() == 100.0
    for i in range(90):
        s.remove(f"/p{i}")
    assert s.round_length() == 10.0
    assert sorted(walk(s, 0.0, 10.0)) == sorted(f"/p{i}" for i in range(90, 101))


def test_interval_and_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        AnnouncementSchedule(0)
    with pytest.raises(ValueError, match="budget"):
        AnnouncementSchedule(10.0, budget=0)


S = SocketId("s")


def test_a_new_socket_may_hear_a_whole_budget_at_once() -> None:
    budget = AnnouncementBudget(100, 10.0)
    assert budget.take(S, 60, now=0.0) == 60
    assert budget.take(S, 60, now=0.0) == 40
    assert budget.take(S, 1, now=0.0) == 0


def test_the_budget_refills_at_its_rate_up_to_its_size() -> None:
    budget = AnnouncementBudget(100, 10.0)
    budget.take(S, 100, now=0.0)
    assert budget.take(S, 100, now=1.0) == 10  # 100 per 10 s
    assert budget.take(S, 100, now=1.5) == 0  # 5 are not worth a write yet
    assert budget.take(S, 3, now=1.5) == 3  # but all that is on offer is
    assert budget.take(S, 100, now=2.3) == 10
    assert budget.take(S, 1000, now=1000.0) == 100  # never more than it holds


def test_a_replay_is_counted_against_the_budget_without_going_below_nothing() -> None:
    budget = AnnouncementBudget(100, 10.0)
    budget.spend(S, 70, now=0.0)
    assert budget.take(S, 100, now=0.0) == 30
    budget.spend(S, 500, now=0.0)
    assert budget.take(S, 100, now=1.0) == 10


def test_sockets_have_budgets_of_their_own_and_forgotten_ones_start_afresh() -> None:
    budget = AnnouncementBudget(10, 10.0)
    other = SocketId("t")
    budget.take(S, 10, now=0.0)
    assert budget.take(other, 10, now=0.0) == 10
    budget.forget(S)
    assert budget.take(S, 10, now=0.0) == 10


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        AnnouncementBudget(0, 10.0)


def test_the_rounds_share_of_a_period_is_what_the_joins_heard_left() -> None:
    budget = AnnouncementBudget(100, 10.0)
    assert budget.per_period == 11  # 10 a second, and one to spare
    assert budget.rounds_share(S, 10, now=0.0) == 10  # a quiet socket: all of it
    budget.take(S, 4, now=0.0)
    assert budget.rounds_share(S, 10, now=0.0) == 7
    budget.spend(S, 100, now=0.0)  # a replay
    assert budget.rounds_share(S, 10, now=0.0) == 0
    budget.end_period()
    assert budget.rounds_share(S, 30, now=0.0) == 11
    # Joins that leave a repeat or two: no second write for those this period.
    budget.end_period()
    budget.take(S, 10, now=100.0)
    assert budget.rounds_share(S, 10, now=100.0) == 0
    budget.end_period()
    assert budget.rounds_share(S, 3, now=100.0) == 3  # nothing heard: a few is all there is


def test_a_held_socket_is_given_nothing_and_keeps_its_whole_bucket_for_its_replay() -> None:
    budget = AnnouncementBudget(100, 10.0)
    budget.hold(S, until=0.75)
    assert budget.take(S, 50, now=0.2) == 0
    assert budget.rounds_share(S, 10, now=0.2) == 0
    budget.spend(S, 100, now=0.5)  # its replay, a little early: the hold ends
    assert budget.rounds_share(S, 10, now=0.5) == 0  # the replay was its period's share
    assert budget.take(S, 50, now=1.5) == 10
    other = SocketId("t")
    budget.hold(other, until=0.75)
    assert budget.take(other, 50, now=0.7) == 0
    assert budget.take(other, 50, now=0.75) == 50  # no replay came: the hold ends anyway
    budget.hold(other, until=5.0)
    budget.forget(other)
    assert budget.take(other, 50, now=1.0) == 50
