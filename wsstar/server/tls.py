"""The TLS context of an https/wss server, from PEM files or a PKCS#12 file.

OpenSSL's own errors do not say which file is wrong (``[Errno 2] No such
file or directory``, ``[SSL] PEM lib``), and a swapped certificate and key
is the commonest mistake of all, so each file is read and parsed here first
and every failure names the file and the option that gave it.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from wsstar.errors import ConfigError
from wsstar.server.config import ServerConfig


def ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The server-side context ``config`` asks for; None for plain http."""
    if config.tls_pfx:
        chain, key = _pfx_as_pem(config.tls_pfx, config.tls_passphrase)
        return _context_from_pem(chain, key, f"--pfx {config.tls_pfx}")
    if not config.tls_cert or not config.tls_key:
        return None
    cert = _read(config.tls_cert, "--cert")
    key = _read(config.tls_key, "--key")
    try:
        x509.load_pem_x509_certificates(cert)
    except ValueError:
        raise ConfigError(
            f"--cert {config.tls_cert} holds no PEM certificate{_swapped(cert, b'PRIVATE KEY')}"
        ) from None
    _pem_key(key, config.tls_key, config.tls_passphrase)
    return _context(
        config.tls_cert,
        config.tls_key,
        config.tls_passphrase,
        f"--key {config.tls_key} is not the private key of --cert {config.tls_cert}",
    )


def _read(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {option} {path}: {exc.strerror or exc}") from None


def _swapped(data: bytes, other_kind: bytes) -> str:
    """A hint when a file holds what the other option wants."""
    swapped = b"-----BEGIN " in data and other_kind in data
    return " (are --cert and --key swapped?)" if swapped else ""


def _pem_key(data: bytes, path: str, passphrase: str | None) -> None:
    try:
        serialization.load_pem_private_key(data, passphrase.encode() if passphrase else None)
    except TypeError:
        # The key is encrypted and no passphrase was given, or the reverse.
        raise ConfigError(
            f"--key {path} is encrypted: give its passphrase with --passphrase (or PFX_PASSPHRASE)"
            if not passphrase
            else f"--key {path} is not encrypted: drop --passphrase"
        ) from None
    except ValueError:
        if passphrase and b"ENCRYPTED" in data:
            raise ConfigError(f"--key {path}: wrong passphrase") from None
        raise ConfigError(
            f"--key {path} holds no PEM private key{_swapped(data, b'CERTIFICATE')}"
        ) from None


def _context(cert: str, key: str, passphrase: str | None, mismatch: str) -> ssl.SSLContext:
    """Both files have parsed, so what OpenSSL can still refuse is the pair."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key, passphrase)
    except ssl.SSLError as exc:
        raise ConfigError(f"{mismatch} ({exc.reason or exc})") from None
    return context


def _pfx_as_pem(path: str, passphrase: str | None) -> tuple[bytes, bytes]:
    """The chain and key of a PKCS#12 file, as PEM (what :mod:`ssl` loads)."""
    data = _read(path, "--pfx")
    try:
        key, cert, chain = pkcs12.load_key_and_certificates(
            data, passphrase.encode() if passphrase else None
        )
    except ValueError:
        raise ConfigError(
            f"--pfx {path} is not a PKCS#12 file, or its passphrase "
            f"({'--passphrase / PFX_PASSPHRASE' if not passphrase else 'the one given'}) is wrong"
        ) from None
    if key is None or cert is None:
        raise ConfigError(f"--pfx {path} must hold both a certificate and its private key")
    pem_chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, *chain))
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem_chain, pem_key


def _context_from_pem(chain: bytes, key: bytes, source: str) -> ssl.SSLContext:
    """:mod:`ssl` loads certificates only from files: the PEM goes through a
    private temporary directory that is gone before the server starts."""
    with tempfile.TemporaryDirectory(prefix="wsstar-tls-") as folder:
        cert_path = os.path.join(folder, "cert.pem")
        key_path = os.path.join(folder, "key.pem")
        for file, data in ((cert_path, chain), (key_path, key)):
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        return _context(cert_path, key_path, None, f"{source}: its key is not the certificate's")
