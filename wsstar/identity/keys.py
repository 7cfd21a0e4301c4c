"""libp2p public keys, peer ids and signature checks.

The crypto challenge proves that a joining peer holds the key behind the peer
id in its address.  Keys arrive as the protobuf ``PublicKey{Type, Data}`` that
js libp2p-crypto marshals; the server re-derives the peer id from them and
verifies a signature over its nonce.  Everything here is fed untrusted bytes,
so every failure is one of this module's exceptions and nothing else.

The protobuf is decoded by hand: two fields do not justify a protobuf
dependency, and a strict decoder is a smaller attack surface.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from functools import cached_property

import base58
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from wsstar.wire.reasons import KeyProblem

#: Marshalled keys up to this size are inlined in the peer id (identity
#: multihash) rather than hashed; the rule of js peer-id >= 0.12.5 / go-libp2p.
MAX_INLINE_KEY_LENGTH = 42

_RSA, _ED25519, _SECP256K1, _ECDSA = 0, 1, 2, 3
#: RSA keys the crypto challenge accepts: sizes libp2p implementations
#: generate (2048 by default, 4096 at most), with the usual exponent.
RSA_MIN_BITS = 2048
RSA_MAX_BITS = 4096
RSA_EXPONENT = 65537

#: The base58btc alphabet peer ids are written in.
BASE58_ALPHABET = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# Whole hex pairs from the start of a string, as far as they go.
_HEX_PAIRS = re.compile("(?:[0-9a-fA-F]{2})*")


class PeerIdError(ValueError):
    """Base of the errors of this module."""


class InvalidPublicKey(PeerIdError):
    """The marshalled public key cannot be used; :attr:`problem` says why.

    The problem's text reaches the client after ``Invalid public key: ``, so
    it is worded in :mod:`wsstar.wire.reasons` with the other client strings.
    """

    def __init__(self, problem: KeyProblem, *values: object) -> None:
        self.problem = problem
        super().__init__(problem.value.format(*values))


class MalformedSignature(PeerIdError):
    """The signature is not even well-formed for the key type.

    The reference answers these with "Crypto error", and well-formed but
    wrong signatures with "Signature Invalid"; clients see the difference.
    """


def lenient_unhex(text: str) -> bytes:
    """Decode hex like Node's ``Buffer.from(text, 'hex')``.

    Node stops at the first pair that is not hex and drops a trailing odd
    nibble instead of failing; clients that append junk still join on the
    reference, so they must here too.
    """
    match = _HEX_PAIRS.match(text)
    assert match is not None  # the pattern matches the empty string
    return bytes.fromhex(match.group())


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 64, 7):
        if pos >= len(data):
            raise InvalidPublicKey(KeyProblem.TRUNCATED_VARINT)
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise InvalidPublicKey(KeyProblem.VARINT_TOO_LONG)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _hashed(marshalled: bytes) -> str:
    return base58.b58encode(b"\x12\x20" + hashlib.sha256(marshalled).digest()).decode()


def _parse_protobuf(data: bytes) -> tuple[int, bytes]:
    """(Type, Data) of a ``PublicKey`` message; unknown fields are skipped."""
    key_type: int | None = None
    key_data: bytes | None = None
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            if field == 1:
                key_type = value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if length > len(data) - pos:
                raise InvalidPublicKey(KeyProblem.FIELD_TOO_LONG)
            if field == 2:
                key_data = data[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > len(data):
                raise InvalidPublicKey(KeyProblem.TRUNCATED_FIXED)
        else:
            raise InvalidPublicKey(KeyProblem.WIRE_TYPE, wire)
        if field == 0:
            raise InvalidPublicKey(KeyProblem.FIELD_ZERO)
    if key_type is None or key_data is None:
        raise InvalidPublicKey(KeyProblem.MISSING_FIELD)
    return key_type, key_data


class PublicKey(ABC):
    """A public key of one of the libp2p key types."""

    key_type: str
    _type_code: int

    @abstractmethod
    def _data(self) -> bytes:
        """The canonical ``Data`` field for this key."""

    @abstractmethod
    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` signs ``message``; raises only MalformedSignature."""

    @cached_property
    def _marshalled(self) -> bytes:
        data = self._data()
        # Type 0 (RSA) is written explicitly, as libp2p-crypto does; a proto3
        # encoder that omits defaults would derive a different id.
        return bytes([0x08, self._type_code, 0x12]) + _encode_varint(len(data)) + data

    def marshal(self) -> bytes:
        return self._marshalled

    @cached_property
    def _ids(self) -> tuple[str, frozenset[str]]:
        marshalled = self._marshalled
        hashed = _hashed(marshalled)
        if len(marshalled) <= MAX_INLINE_KEY_LENGTH:
            inline = base58.b58encode(bytes([0, len(marshalled)]) + marshalled).decode()
            # Ids made by js peer-id before 0.12.5 hashed every key, so a
            # long-lived small-key identity may still be the hashed form.
            return inline, frozenset((inline, hashed))
        return hashed, frozenset((hashed,))

    def peer_id(self) -> str:
        """The base58btc peer id current libp2p derives from this key."""
        return self._ids[0]

    def peer_ids(self) -> frozenset[str]:
        """Every peer id form accepted for this key."""
        return self._ids[1]

    def unfit(self) -> KeyProblem | None:
        """Why this key is refused for the crypto challenge, if it is.

        Parsing accepts any key libp2p can marshal; the challenge accepts
        only keys whose verification is cheap, so that a join cannot be made
        to cost the server milliseconds of CPU.
        """
        return None


class _RsaKey(PublicKey):
    key_type = "rsa"
    _type_code = _RSA

    def __init__(self, key: rsa.RSAPublicKey) -> None:
        self._key = key

    def unfit(self) -> KeyProblem | None:
        # A 16384-bit modulus or a full-size exponent costs 3 to 5 ms per
        # verification, against 0.06 ms for RSA-2048 with e = 65537 (what
        # every libp2p implementation generates).
        if not RSA_MIN_BITS <= self._key.key_size <= RSA_MAX_BITS:
            return KeyProblem.RSA_SIZE
        if self._key.public_numbers().e != RSA_EXPONENT:
            return KeyProblem.RSA_EXPONENT
        return None

    def _data(self) -> bytes:
        return self._key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            # Node's RSA verify returns false for any wrong length or content.
            return False
        return True


class _Ed25519Key(PublicKey):
    key_type = "ed25519"
    _type_code = _ED25519

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._key = ed25519.Ed25519PublicKey.from_public_bytes(raw)

    def _data(self) -> bytes:
        return self._raw

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            raise MalformedSignature("an Ed25519 signature is 64 bytes")
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class _EcKey(PublicKey):
    """secp256k1 (compressed point) and ECDSA (SPKI) keys: DER signatures over SHA-256."""

    def __init__(self, key: ec.EllipticCurvePublicKey, type_code: int) -> None:
        self._key = key
        self._type_code = type_code
        self.key_type = "secp256k1" if type_code == _SECP256K1 else "ecdsa"

    def _data(self) -> bytes:
        if self._type_code == _SECP256K1:
            return self._key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
            )
        return self._key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            _, s = decode_dss_signature(signature)
        except ValueError as exc:
            raise MalformedSignature("the signature is not DER") from exc
        if self._type_code == _SECP256K1 and s > _SECP256K1_ORDER // 2:
            # secp256k1-node (the reference) rejects high-S signatures, which
            # are malleable copies of valid ones.
            return False
        try:
            self._key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def shared_form(peer_id: str) -> str:
    """The one spelling all forms of ``peer_id`` have in common.

    Without the crypto challenge no key is seen, yet an id that inlines its
    key (identity multihash, ``12D3Koo…`` / ``16Uiu2…``) and the legacy
    sha256 form of the same key name one peer; both map to the hashed form,
    which is the only one computable from either.  Any other text is itself.
    """
    # Identity multihashes start with a zero byte, which base58 writes as "1".
    if not peer_id.startswith("1") or len(peer_id) > 64:
        return peer_id
    try:
        raw = base58.b58decode(peer_id)
    except ValueError:
        return peer_id
    if len(raw) < 3 or raw[0] != 0 or raw[1] != len(raw) - 2:
        return peer_id
    return _hashed(raw[2:])


def decode_public_key(marshalled: bytes) -> PublicKey:
    """Parse a marshalled libp2p public key (RSA, Ed25519, secp256k1 or ECDSA)."""
    key_type, data = _parse_protobuf(marshalled)
    try:
        if key_type == _ED25519:
            if len(data) != 32:
                raise InvalidPublicKey(KeyProblem.ED25519_SIZE)
            return _Ed25519Key(data)
        if key_type == _SECP256K1:
            if len(data) not in (33, 65):
                raise InvalidPublicKey(KeyProblem.SECP256K1_SIZE)
            return _EcKey(
                ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), data), key_type
            )
        if key_type in (_RSA, _ECDSA):
            key = serialization.load_der_public_key(data)
            if key_type == _RSA and isinstance(key, rsa.RSAPublicKey):
                return _RsaKey(key)
            if key_type == _ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
                return _EcKey(key, key_type)
            raise InvalidPublicKey(KeyProblem.TYPE_MISMATCH)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        if isinstance(exc, InvalidPublicKey):
            raise
        raise InvalidPublicKey(KeyProblem.BAD_DATA, _TYPE_NAMES.get(key_type, "key")) from exc
    raise InvalidPublicKey(KeyProblem.KEY_TYPE, key_type)


_TYPE_NAMES = {_RSA: "RSA", _ED25519: "Ed25519", _SECP256K1: "secp256k1", _ECDSA: "ECDSA"}
