"""Certificates and keys for the TLS tests, made on the spot."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Credentials:
    cert: Path
    key: Path
    #: The same key, encrypted with "secret".
    encrypted_key: Path
    #: Certificate and key in PKCS#12, with the passphrase "secret".
    pfx: Path
    #: A key that is not the certificate's.
    other_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def self_signed(directory: Path) -> Credentials:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        # Node.js checks the name it connected to against these.
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    made = Credentials(
        directory / "cert.pem",
        directory / "key.pem",
        directory / "key-encrypted.pem",
        directory / "server.pfx",
        directory / "other-key.pem",
    )
    made.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    made.key.write_bytes(_key_pem(key))
    made.encrypted_key.write_bytes(_key_pem(key, b"secret"))
    made.other_key.write_bytes(_key_pem(ec.generate_private_key(ec.SECP256R1())))
    made.pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"wsstar", key, cert, None, serialization.BestAvailableEncryption(b"secret")
        )
    )
    return made
