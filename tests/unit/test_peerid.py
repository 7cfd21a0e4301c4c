"""Keys, ids and signatures checked against values made by the js libraries the
client uses (libp2p-crypto 0.16.4, peer-id 0.12.5): tests/fixtures/keys.json."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given
from hypothesis import strategies as st

from wsstar.identity.keys import (
    InvalidPublicKey,
    MalformedSignature,
    decode_public_key,
    lenient_unhex,
    shared_form,
)

KEYS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "keys.json").read_text()
)
IDS = [f"{k['type']}-{k['bits']}" for k in KEYS]
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def by_type(kind: str) -> dict[str, Any]:
    return next(k for k in KEYS if k["type"] == kind)


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_peer_id_matches_js(key: dict[str, Any]) -> None:
    public = decode_public_key(bytes.fromhex(key["public_key"]))
    assert public.peer_id() == key["peer_id"]
    assert public.marshal().hex() == key["public_key"]
    assert key["peer_id"] in public.peer_ids()


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_js_signatures_verify_and_tampering_does_not(key: dict[str, Any]) -> None:
    public = decode_public_key(bytes.fromhex(key["public_key"]))
    signature = bytes.fromhex(key["signature"])
    nonce = key["nonce"].encode()
    assert public.verify(nonce, signature)
    assert not public.verify(nonce + b"x", signature)
    flipped = bytearray(signature)
    flipped[-1] ^= 1
    assert not public.verify(nonce, bytes(flipped))


def test_ed25519_wrong_length_is_malformed() -> None:
    public = decode_public_key(bytes.fromhex(by_type("ed25519")["public_key"]))
    for signature in (b"", b"\x00", b"\x00" * 128):
        with pytest.raises(MalformedSignature):
            public.verify(b"nonce", signature)


def test_rsa_wrong_length_is_just_invalid() -> None:
    public = decode_public_key(bytes.fromhex(by_type("rsa")["public_key"]))
    assert not public.verify(b"nonce", b"\x00")
    assert not public.verify(b"nonce", b"\x00" * 1024)


def test_secp256k1_non_der_is_malformed_and_high_s_is_invalid() -> None:
    key = by_type("secp256k1")
    public = decode_public_key(bytes.fromhex(key["public_key"]))
    with pytest.raises(MalformedSignature):
        public.verify(key["nonce"].encode(), b"\x00" * 64)
    r, s = decode_dss_signature(bytes.fromhex(key["signature"]))
    high_s = encode_dss_signature(r, SECP256K1_N - s)
    assert not public.verify(key["nonce"].encode(), high_s)


def test_uncompressed_secp256k1_key_gives_the_same_id() -> None:
    key = by_type("secp256k1")
    compressed = bytes.fromhex(key["public_key"])[4:]
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), compressed)
    raw = point.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    public = decode_public_key(b"\x08\x02\x12\x41" + raw)
    assert public.peer_id() == key["peer_id"]


def test_small_keys_also_accept_the_legacy_sha256_id() -> None:
    public = decode_public_key(bytes.fromhex(by_type("ed25519")["public_key"]))
    assert len(public.peer_ids()) == 2
    assert any(i.startswith("Qm") for i in public.peer_ids())


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_every_form_of_an_id_has_one_shared_form(key: dict[str, Any]) -> None:
    public = decode_public_key(bytes.fromhex(key["public_key"]))
    assert len({shared_form(i) for i in public.peer_ids()}) == 1


@pytest.mark.parametrize("text", ["", "1", "11", "1" * 65, "QmNotAnId", "1I0lO", "not base58"])
def test_text_that_is_no_inlined_key_is_its_own_shared_form(text: str) -> None:
    assert shared_form(text) == text


def test_ecdsa_p256_round_trip() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public = decode_public_key(b"\x08\x03\x12" + bytes([len(spki)]) + spki)
    assert public.key_type == "ecdsa"
    assert public.peer_id().startswith("Qm")
    assert public.verify(b"msg", private.sign(b"msg", ec.ECDSA(hashes.SHA256())))
    assert not public.verify(b"other", private.sign(b"msg", ec.ECDSA(hashes.SHA256())))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0aFF", b"\x0a\xff"),
        ("0AFFzz", b"\x0a\xff"),
        ("0aff0", b"\x0a\xff"),
        ("_", b""),
        ("", b""),
        ("0g00", b""),
    ],
)
def test_lenient_unhex_is_nodes_buffer_from_hex(text: str, expected: bytes) -> None:
    assert lenient_unhex(text) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x08",
        b"\x08\x01",
        b"\x08\x01\x12\x20" + b"\x00" * 31,
        b"\x08\x01\x12\xff\xff\xff\xff\x0f",
        b"\x08\x07\x12\x01\x00",
        b"\x08\x00\x12\x03abc",
        b"\x0b\x01\x12\x01\x00",
        b"\x00\x01",
        b"\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
        b"\x08\x02\x12\x21" + b"\x05" * 33,
    ],
)
def test_garbage_keys_raise_invalid_public_key(data: bytes) -> None:
    with pytest.raises(InvalidPublicKey):
        decode_public_key(data)


def test_fields_in_any_order_and_unknown_fields_skipped() -> None:
    key = bytes.fromhex(by_type("ed25519")["public_key"])
    reordered = key[2:] + key[:2] + b"\x18\x05" + b"\x22\x01x"
    assert decode_public_key(reordered).peer_id() == by_type("ed25519")["peer_id"]


@given(st.binary(max_size=400))
def test_any_bytes_either_decode_or_raise_invalid_public_key(data: bytes) -> None:
    with contextlib.suppress(InvalidPublicKey):
        decode_public_key(data)


@given(st.sampled_from(KEYS), st.binary(max_size=600))
def test_verify_returns_bool_or_raises_malformed(key: dict[str, Any], signature: bytes) -> None:
    public = decode_public_key(bytes.fromhex(key["public_key"]))
    try:
        result = public.verify(b"nonce", signature)
    except MalformedSignature:
        return
    assert result in (True, False)
