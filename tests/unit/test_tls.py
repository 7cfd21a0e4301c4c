"""TLS set-up errors name the file and say what is wrong with it."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from tests.support.tls import self_signed
from wsstar.errors import ConfigError
from wsstar.server.cli import parse_config
from wsstar.server.tls import ssl_context


def context(*argv: str) -> ssl.SSLContext | None:
    return ssl_context(parse_config(list(argv), {}))


def test_pem_pair_and_plain_http(tmp_path: Path) -> None:
    made = self_signed(tmp_path)
    assert context() is None
    assert isinstance(context("--cert", str(made.cert), "--key", str(made.key)), ssl.SSLContext)
    assert parse_config(["--cert", str(made.cert), "--key", str(made.key)], {}).scheme == "https"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    made = self_signed(tmp_path)
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(ConfigError, match=rf"cannot read --cert {missing}: No such file"):
        context("--cert", str(missing), "--key", str(made.key))
    with pytest.raises(ConfigError, match=rf"cannot read --key {missing}: No such file"):
        context("--cert", str(made.cert), "--key", str(missing))


def test_swapped_certificate_and_key_are_named(tmp_path: Path) -> None:
    made = self_signed(tmp_path)
    with pytest.raises(ConfigError, match=r"--cert .*key.pem holds no PEM certificate \(are"):
        context("--cert", str(made.key), "--key", str(made.cert))


def test_a_key_that_is_not_the_certificates(tmp_path: Path) -> None:
    made = self_signed(tmp_path)
    with pytest.raises(ConfigError, match=r"--key .*other-key.pem is not the private key of"):
        context("--cert", str(made.cert), "--key", str(made.other_key))


def test_an_encrypted_key_needs_its_passphrase(tmp_path: Path) -> None:
    made = self_signed(tmp_path)
    pair = ("--cert", str(made.cert), "--key", str(made.encrypted_key))
    with pytest.raises(ConfigError, match="is encrypted: give its passphrase with --passphrase"):
        context(*pair)
    with pytest.raises(ConfigError, match="wrong passphrase"):
        context(*pair, "--passphrase", "guess")
    assert context(*pair, "--passphrase", "secret") is not None


def test_pfx_like_the_reference(tmp_path: Path) -> None:
    made = self_signed(tmp_path)
    config = parse_config([], {"PFX": str(made.pfx), "PFX_PASSPHRASE": "secret"})
    assert config.scheme == "https"
    assert isinstance(ssl_context(config), ssl.SSLContext)
    assert context("--pfx", str(made.pfx), "--passphrase", "secret") is not None
    with pytest.raises(ConfigError, match=r"--pfx .*server.pfx is not a PKCS#12 file, or its"):
        context("--pfx", str(made.pfx), "--passphrase", "guess")
    with pytest.raises(ConfigError, match=r"--pfx .*cert.pem is not a PKCS#12 file"):
        context("--pfx", str(made.cert))
    with pytest.raises(ConfigError, match="either --pfx or --cert"):
        parse_config(["--pfx", str(made.pfx), "--cert", str(made.cert), "--key", "k"], {})
