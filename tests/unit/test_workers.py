"""Where a worker stands, and which worker a session id belongs to."""

from __future__ import annotations

from wsstar.server.workers import Place, _without_port


def test_a_session_id_names_the_worker_that_made_it() -> None:
    place = Place(1, (5000, 5001, 5002))
    assert place.prefix == "1."
    assert place.owner("2.AbC-_x") == 2
    assert place.owner("1.AbC") is None  # its own
    assert place.owner("AbC-_x") is None  # not a worker's session
    assert place.owner("7.AbC") is None  # no such worker
    assert place.owner("x.AbC") is None
    assert Place.from_env(place.encode()) == place
    assert Place.from_env("") is None


def test_the_supervisor_gives_the_workers_its_own_port() -> None:
    assert _without_port(["--port", "0", "-p", "1", "--port=2", "--workers", "2"]) == [
        "--workers",
        "2",
    ]
