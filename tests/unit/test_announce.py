import pytest

from wsstar.announce import AnnouncementSchedule


def test_first_announcement_one_interval_after_join_then_every_interval() -> None:
    s = AnnouncementSchedule(10.0)
    s.add("/a", now=0.0)
    assert s.next_due() == 10.0
    assert s.pop_due(9.99) == []
    assert s.pop_due(10.0) == ["/a"]
    assert s.pop_due(19.0) == []
    assert s.pop_due(20.5) == ["/a"]
    assert s.next_due() == 30.0


def test_removed_and_readded_addresses_are_not_announced_twice() -> None:
    s = AnnouncementSchedule(10.0)
    s.add("/a", now=0.0)
    s.add("/b", now=1.0)
    s.remove("/a")
    s.add("/b", now=5.0)  # a re-join restarts the cycle
    assert s.pop_due(11.0) == []
    assert s.pop_due(15.0) == ["/b"]
    assert len(s) == 1
    assert "/a" not in s


def test_a_stalled_ticker_skips_missed_rounds_instead_of_bursting() -> None:
    s = AnnouncementSchedule(1.0)
    s.add("/a", now=0.0)
    assert s.pop_due(100.0) == ["/a"]
    assert s.pop_due(100.5) == []
    assert s.pop_due(101.0) == ["/a"]


def test_churn_does_not_grow_the_heap_without_bound() -> None:
    s = AnnouncementSchedule(10.0)
    for i in range(10_000):
        s.add(f"/p{i}", now=float(i))
        s.remove(f"/p{i}")
    assert len(s) == 0
    assert len(s._heap) <= 130
    assert s.next_due() is None


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        AnnouncementSchedule(0)
