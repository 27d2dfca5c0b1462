"""The v1 ciphertext blob: round trips, and every way a blob can fail (one fixed message)."""

from __future__ import annotations

import hmac
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFHMAC, CounterLocation, Mode
from hypothesis import given
from hypothesis import strategies as st

from kms_actors.domain.context import canonical_context
from kms_actors.errors import InvalidCiphertextException
from kms_actors.hsm import Material, blob_material_id
from kms_actors.hsm._blob import HEADER_BYTES, INVALID_CIPHERTEXT, MIN_BLOB_BYTES, open_blob, seal
from kms_actors.hsm._material import KDF_LABEL, derive_message_key, generate_material
from tests.hsm.hsm_support import ARN, OTHER_ARN

# Hypothesis forbids function-scoped fixtures in @given tests, so these are module-level.
SECRET = os.urandom(32)
MATERIAL = Material(os.urandom(16), ARN, 1, SECRET)

contexts = st.none() | st.dictionaries(st.text(max_size=16), st.text(max_size=16), max_size=6)


def assert_invalid(material: Material, blob: bytes, context: dict[str, str] | None) -> None:
    with pytest.raises(InvalidCiphertextException) as info:
        open_blob(material, blob, context)
    assert info.value.message == INVALID_CIPHERTEXT
    # Nothing chained either: a traceback must not say which check failed.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


@given(plaintext=st.binary(max_size=4096), context=contexts)
def test_round_trip(plaintext: bytes, context: dict[str, str] | None) -> None:
    blob = seal(MATERIAL, plaintext, context)
    assert len(blob) == HEADER_BYTES + len(plaintext) + 16
    assert blob_material_id(blob) == MATERIAL.material_id
    assert open_blob(MATERIAL, blob, context) == plaintext


def test_round_trip_edge_sizes(material: Material) -> None:
    for size in (0, 1, 15, 16, 17, 255, 256, 4095, 4096):
        plaintext = os.urandom(size)
        assert open_blob(material, seal(material, plaintext, None), None) == plaintext


def test_layout(material: Material) -> None:
    blob = seal(material, b"hello", {"k": "v"})
    assert blob[0] == 0x01
    assert blob[1:17] == material.material_id
    assert b"hello" not in blob
    assert ARN.encode() not in blob  # the header names the material, never the key ARN


def test_fresh_salt_and_iv_per_message(material: Material) -> None:
    blobs = {seal(material, b"same", None) for _ in range(100)}
    assert len(blobs) == 100
    assert len({b[17:33] for b in blobs}) == 100
    assert len({b[33:45] for b in blobs}) == 100


def test_none_and_empty_context_are_the_same(material: Material) -> None:
    assert open_blob(material, seal(material, b"x", None), {}) == b"x"
    assert open_blob(material, seal(material, b"x", {}), None) == b"x"


def test_every_tampered_byte_fails_the_same(material: Material) -> None:
    blob = seal(material, os.urandom(32), {"purpose": "test"})
    for index in range(len(blob)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(blob)
            tampered[index] ^= mask
            assert_invalid(material, bytes(tampered), {"purpose": "test"})


@given(
    plaintext=st.binary(max_size=256),
    context=contexts,
    where=st.integers(min_value=0),
    mask=st.integers(min_value=1, max_value=255),
)
def test_tamper_any_byte(
    plaintext: bytes, context: dict[str, str] | None, where: int, mask: int
) -> None:
    tampered = bytearray(seal(MATERIAL, plaintext, context))
    tampered[where % len(tampered)] ^= mask
    assert_invalid(MATERIAL, bytes(tampered), context)


def test_truncated_and_extended_blobs_fail(material: Material) -> None:
    blob = seal(material, b"0123456789", None)
    for length in range(len(blob)):
        assert_invalid(material, blob[:length], None)
    assert_invalid(material, blob + b"\x00", None)
    assert_invalid(material, b"", None)


def test_wrong_context_fails(material: Material) -> None:
    blob = seal(material, b"secret", {"tenant": "a"})
    for wrong in (None, {}, {"tenant": "b"}, {"tenant": "a", "x": "y"}, {"Tenant": "a"}):
        assert_invalid(material, blob, wrong)


@given(first=contexts, second=contexts)
def test_distinct_contexts_never_cross(
    first: dict[str, str] | None, second: dict[str, str] | None
) -> None:
    blob = seal(MATERIAL, b"p", first)
    if canonical_context(first) == canonical_context(second):
        assert open_blob(MATERIAL, blob, second) == b"p"
    else:
        assert_invalid(MATERIAL, blob, second)


def test_context_encoding_is_unambiguous(material: Material) -> None:
    blob = seal(material, b"p", {"ab": "c"})
    assert_invalid(material, blob, {"a": "bc"})
    blob = seal(material, b"p", {"a": "bc"})
    assert_invalid(material, blob, {"ab": "c"})


def test_wrong_material_fails(material: Material) -> None:
    blob = seal(material, b"p", None)
    assert_invalid(generate_material(ARN, 1), blob, None)
    # Same material id, other bytes: the header check passes, the tag does not.
    impostor = Material(material.material_id, ARN, 1, os.urandom(32))
    assert_invalid(impostor, blob, None)


def test_key_arn_is_bound() -> None:
    blob = seal(MATERIAL, b"p", None)
    same_bytes_other_key = Material(MATERIAL.material_id, OTHER_ARN, 1, SECRET)
    assert_invalid(same_bytes_other_key, blob, None)
    assert open_blob(Material(MATERIAL.material_id, ARN, 7, SECRET), blob, None) == b"p"


def test_blob_material_id_rejects_short_and_unknown_versions(material: Material) -> None:
    blob = seal(material, b"", None)
    assert len(blob) == MIN_BLOB_BYTES
    assert blob_material_id(blob) == material.material_id
    for bad in (b"", b"\x01", blob[:-1], b"\x02" + blob[1:], b"\x00" + blob[1:]):
        with pytest.raises(InvalidCiphertextException) as info:
            blob_material_id(bad)
        assert info.value.message == INVALID_CIPHERTEXT


@given(garbage=st.binary(max_size=200))
def test_blob_material_id_on_garbage(garbage: bytes) -> None:
    if len(garbage) >= MIN_BLOB_BYTES and garbage[0] == 0x01:
        assert blob_material_id(garbage) == garbage[1:17]
    else:
        with pytest.raises(InvalidCiphertextException) as info:
            blob_material_id(garbage)
        assert info.value.message == INVALID_CIPHERTEXT


@given(garbage=st.binary(max_size=200), context=contexts)
def test_open_garbage_fails(garbage: bytes, context: dict[str, str] | None) -> None:
    assert_invalid(MATERIAL, garbage, context)
    assert_invalid(MATERIAL, b"\x01" + MATERIAL.material_id + garbage, context)


def _reference_kdf(secret: bytes, salt: bytes) -> bytes:
    return KBKDFHMAC(
        algorithm=hashes.SHA256(),
        mode=Mode.CounterMode,
        length=32,
        rlen=4,
        llen=4,
        location=CounterLocation.BeforeFixed,
        label=KDF_LABEL,
        context=salt,
        fixed=None,
    ).derive(secret)


@given(salt=st.binary(min_size=16, max_size=16))
def test_kdf_equals_cryptography_kbkdfhmac(salt: bytes) -> None:
    expected = _reference_kdf(SECRET, salt)
    assert derive_message_key(MATERIAL, salt) == expected
    message = (1).to_bytes(4, "big") + KDF_LABEL + b"\x00" + salt + (256).to_bytes(4, "big")
    assert hmac.digest(SECRET, message, "sha256") == expected
    # The cached HMAC state is copied, never consumed: the same salt gives the same key.
    assert derive_message_key(MATERIAL, salt) == expected


def test_blob_decrypts_with_an_independent_implementation() -> None:
    context = {"b": "2", "a": "1"}
    blob = seal(MATERIAL, b"independent", context)
    header, salt, iv = blob[:45], blob[17:33], blob[33:45]
    arn = ARN.encode()
    aad = header + len(arn).to_bytes(4, "big") + arn + canonical_context(context)
    key = _reference_kdf(SECRET, salt)
    assert AESGCM(key).decrypt(iv, blob[45:], aad) == b"independent"
