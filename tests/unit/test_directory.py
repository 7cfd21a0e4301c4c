from wsstar.directory import LocalDirectory


def test_last_claim_wins_and_release_needs_ownership() -> None:
    d = LocalDirectory()
    assert d.claim("/a", "s1") is None
    assert d.claim("/a", "s2") == "s1"
    assert d.owner("/a") == "s2"
    assert set(d.owned_by("s1")) == set()
    assert not d.release("/a", "s1")
    assert d.owner("/a") == "s2"
    assert d.release("/a", "s2")
    assert d.owner("/a") is None
    assert len(d) == 0
    assert list(d.owners()) == []


def test_release_all_drops_only_what_is_still_owned() -> None:
    d = LocalDirectory()
    d.claim("/a", "s1")
    d.claim("/b", "s1")
    d.claim("/b", "s2")
    assert sorted(d.release_all("s1")) == ["/a"]
    assert d.owner("/b") == "s2"
    assert sorted(d.addresses()) == ["/b"]
    assert list(d.owners()) == ["s2"]


def test_claiming_own_address_again_reports_no_previous_owner() -> None:
    d = LocalDirectory()
    d.claim("/a", "s1")
    assert d.claim("/a", "s1") is None
    assert len(d) == 1
