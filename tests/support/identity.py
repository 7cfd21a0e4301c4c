"""Peer identities for tests: an Ed25519 key, its libp2p peer id and signatures."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import base58
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


@dataclass
class Identity:
    private: ed25519.Ed25519PrivateKey

    @classmethod
    def generate(cls) -> Identity:
        return cls(ed25519.Ed25519PrivateKey.generate())

    @property
    def marshalled_public_key(self) -> bytes:
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return b"\x08\x01\x12\x20" + raw

    @property
    def peer_id(self) -> str:
        key = self.marshalled_public_key
        return base58.b58encode(bytes([0, len(key)]) + key).decode()

    def address(self, port: int) -> str:
        return f"/ip4/127.0.0.1/tcp/{port}/ws/p2p-websocket-star/ipfs/{self.peer_id}"

    def sign_hex(self, nonce: str) -> str:
        return self.private.sign(nonce.encode()).hex()


def sha256_peer_id(marshalled: bytes) -> str:
    """The hashed (legacy for small keys, only for large ones) peer id of a
    marshalled public key."""
    return base58.b58encode(b"\x12\x20" + hashlib.sha256(marshalled).digest()).decode()


def marshalled_rsa(key: rsa.RSAPublicKey) -> tuple[bytes, str]:
    """An RSA public key marshalled as libp2p does, and its peer id."""
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    varint = bytes([len(der) & 0x7F | 0x80, len(der) >> 7])
    marshalled = b"\x08\x00\x12" + varint + der
    return marshalled, sha256_peer_id(marshalled)
