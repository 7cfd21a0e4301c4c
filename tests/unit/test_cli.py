from __future__ import annotations

import pytest

from wsstar.errors import ConfigError
from wsstar.server.cli import parse_config
from wsstar.server.options import env_flag


def test_defaults_match_the_reference_cli() -> None:
    config = parse_config([], {})
    assert (config.host, config.port) == ("0.0.0.0", 9090)
    assert config.rules.crypto_challenge is True
    assert config.rules.strict_multiaddr is True
    assert config.metrics is True
    assert config.announce_interval == 10.0


def test_environment_like_the_reference() -> None:
    config = parse_config(
        [],
        {
            "PORT": "8081",
            "HOST": "127.0.0.1",
            "DISABLE_CRYPTO_CHALLENGE": "1",
            "DISABLE_STRICT_MULTIADDR": "true",
            "DISABLE_METRICS": "yes",
        },
    )
    assert (config.host, config.port) == ("127.0.0.1", 8081)
    assert not config.rules.crypto_challenge
    assert not config.rules.strict_multiaddr
    assert not config.metrics


def test_flags_win_over_environment_and_both_spellings_work() -> None:
    config = parse_config(
        ["--port", "7000", "--strict-multiaddr"], {"PORT": "8081", "DISABLE_STRICT_MULTIADDR": "1"}
    )
    assert config.port == 7000
    assert config.rules.strict_multiaddr
    assert not parse_config(["--disableCryptoChallenge"], {}).rules.crypto_challenge
    assert not parse_config(["--disable-crypto-challenge"], {}).rules.crypto_challenge
    assert not parse_config(["--disableStrictMultiaddr"], {}).rules.strict_multiaddr
    assert not parse_config(["--disable-metrics"], {}).metrics


@pytest.mark.parametrize(
    ("value", "expected"), [("0", False), ("false", False), ("", False), ("ON", True)]
)
def test_env_flags_mean_what_they_say(value: str, expected: bool) -> None:
    assert env_flag({"X": value}, "X") is expected


def test_bad_settings_are_refused_with_a_reason() -> None:
    with pytest.raises(ConfigError, match="not a boolean"):
        parse_config([], {"DISABLE_METRICS": "maybe"})
    with pytest.raises(ConfigError, match="port"):
        parse_config([], {"PORT": "http"})
    with pytest.raises(ConfigError, match="both"):
        parse_config(["--cert", "c.pem"], {})
    with pytest.raises(SystemExit):
        parse_config(["--announce-interval", "0"], {})


def test_announce_budget_flag() -> None:
    assert parse_config([], {}).announce_budget == 100
    assert parse_config(["--announce-budget", "0"], {}).announce_budget is None
    assert parse_config(["--announce-budget", "7"], {}).announce_budget == 7
    with pytest.raises(SystemExit):
        parse_config(["--announce-budget", "-1"], {})


def test_dash_h_is_the_host_as_in_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_config(["-h", "127.0.0.2"], {}).host == "127.0.0.2"
    with pytest.raises(SystemExit) as exit_:
        parse_config(["--help"], {})
    assert exit_.value.code == 0
    assert "usage: wsstar-server" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "challenge"),
    [
        (["--disableCryptoChallenge"], False),
        (["--disableCryptoChallenge=true"], False),
        (["--disableCryptoChallenge", "true"], False),
        (["--disable-crypto-challenge=1"], False),
        (["--disableCryptoChallenge=false"], True),
        (["--disableCryptoChallenge", "false", "--port", "9"], True),
    ],
)
def test_switches_take_the_references_value_form(argv: list[str], challenge: bool) -> None:
    assert parse_config(argv, {}).rules.crypto_challenge is challenge


def test_a_switch_value_that_is_no_boolean_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse_config(["--disableMetrics=maybe"], {})
    assert "not a boolean: 'maybe'" in capsys.readouterr().err


def test_log_level_in_any_case() -> None:
    assert parse_config(["--log-level", "DEBUG"], {}).log_level == "debug"
    assert parse_config([], {"LOG_LEVEL": "Warning"}).log_level == "warning"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--max-connections", "1.5"], "--max-connections: not a whole number: '1.5'"),
        (["--announce-interval", "soon"], "--announce-interval: not a number: 'soon'"),
        (["--relay-stall-timeout", "-2"], "--relay-stall-timeout: must be positive: -2"),
        (["--port", "70000"], "port 70000 is out of range"),
    ],
)
def test_bad_numbers_are_named(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_config(argv, {})
    assert exit_.value.code == 2
    assert error in capsys.readouterr().err
