"""Encrypt and Decrypt through the embedded client: round trips and every way a blob is refused."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.engine_support import alias_arn, error_of, key_arn, new_key

contexts = st.dictionaries(st.text(max_size=16), st.text(max_size=32), max_size=6)


@pytest.fixture
async def key_id(kms: Any) -> AsyncIterator[str]:
    """A fresh symmetric key with the alias ``alias/crypto``."""
    metadata = await new_key(kms, Description="crypto tests")
    await kms.create_alias(AliasName="alias/crypto", TargetKeyId=metadata["KeyId"])
    yield str(metadata["KeyId"])


@pytest.mark.anyio
@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plaintext=st.binary(min_size=1, max_size=4096), context=contexts)
async def test_round_trip_any_plaintext_and_context(
    kms: Any, key_id: str, plaintext: bytes, context: dict[str, str]
) -> None:
    encrypted = await kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)
    blob = encrypted["CiphertextBlob"]
    assert encrypted["KeyId"] == key_arn(key_id)
    assert encrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    if len(plaintext) >= 8:
        assert plaintext not in blob
    decrypted = await kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert decrypted["Plaintext"] == plaintext
    assert decrypted["KeyId"] == key_arn(key_id)


@pytest.mark.anyio
@pytest.mark.parametrize("size", [1, 2, 17, 4095, 4096])
async def test_round_trip_sizes_without_context(kms: Any, key_id: str, size: int) -> None:
    plaintext = os.urandom(size)
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=plaintext))["CiphertextBlob"]
    assert (await kms.decrypt(CiphertextBlob=blob))["Plaintext"] == plaintext


@pytest.mark.anyio
async def test_same_plaintext_encrypts_differently(kms: Any, key_id: str) -> None:
    first = (await kms.encrypt(KeyId=key_id, Plaintext=b"same"))["CiphertextBlob"]
    second = (await kms.encrypt(KeyId=key_id, Plaintext=b"same"))["CiphertextBlob"]
    assert first != second


@pytest.mark.anyio
async def test_plaintext_over_4096_bytes_is_refused(kms: Any, key_id: str) -> None:
    error = await error_of(kms.encrypt(KeyId=key_id, Plaintext=b"x" * 4097))
    assert error.code == "ValidationException"


@pytest.mark.anyio
async def test_decrypt_with_every_form_of_key_id(kms: Any, key_id: str) -> None:
    context = {"purpose": "forms"}
    blob = (await kms.encrypt(KeyId="alias/crypto", Plaintext=b"forms", EncryptionContext=context))[
        "CiphertextBlob"
    ]
    for given_id in (
        None,
        key_id,
        key_arn(key_id),
        "alias/crypto",
        alias_arn("alias/crypto"),
    ):
        params: dict[str, Any] = {"CiphertextBlob": blob, "EncryptionContext": context}
        if given_id is not None:
            params["KeyId"] = given_id
        decrypted = await kms.decrypt(**params)
        assert decrypted["Plaintext"] == b"forms", given_id
        assert decrypted["KeyId"] == key_arn(key_id), given_id


@pytest.mark.anyio
async def test_encrypt_with_every_form_of_key_id(kms: Any, key_id: str) -> None:
    for given_id in (key_id, key_arn(key_id), "alias/crypto", alias_arn("alias/crypto")):
        encrypted = await kms.encrypt(KeyId=given_id, Plaintext=b"forms")
        assert encrypted["KeyId"] == key_arn(key_id), given_id
        decrypted = await kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])
        assert decrypted["Plaintext"] == b"forms"


def _flip(blob: bytes, position: int) -> bytes:
    changed = bytearray(blob)
    changed[position] ^= 0x01
    return bytes(changed)


@pytest.mark.anyio
async def test_every_integrity_failure_gives_one_message(kms: Any, key_id: str) -> None:
    context = {"tenant": "acme", "purpose": "oracle"}
    plaintext = b"p" * 100
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context))[
        "CiphertextBlob"
    ]
    assert len(blob) == 45 + len(plaintext) + 16  # header, ciphertext, tag (hsm/_blob.py)
    positions = {
        "version": 0,
        "material id": 1,
        "material id end": 16,
        "salt": 20,
        "iv": 40,
        "ciphertext start": 45,
        "middle": len(blob) // 2,
        "tag start": len(blob) - 16,
        "tag end": len(blob) - 1,
    }
    attempts: dict[str, dict[str, Any]] = {
        f"flip {name}": {"CiphertextBlob": _flip(blob, at), "EncryptionContext": context}
        for name, at in positions.items()
    }
    attempts |= {
        "wrong context value": {
            "CiphertextBlob": blob,
            "EncryptionContext": {"tenant": "evil", "purpose": "oracle"},
        },
        "missing context": {"CiphertextBlob": blob},
        "missing one pair": {"CiphertextBlob": blob, "EncryptionContext": {"tenant": "acme"}},
        "extra pair": {"CiphertextBlob": blob, "EncryptionContext": {**context, "x": "y"}},
        "truncated by one": {"CiphertextBlob": blob[:-1], "EncryptionContext": context},
        "header only": {"CiphertextBlob": blob[:45], "EncryptionContext": context},
        "one byte": {"CiphertextBlob": b"\x01", "EncryptionContext": context},
        "zero byte": {"CiphertextBlob": b"\x00", "EncryptionContext": context},
        "garbage": {"CiphertextBlob": os.urandom(200), "EncryptionContext": context},
        "garbage v1": {"CiphertextBlob": b"\x01" + os.urandom(120)},
        "appended byte": {"CiphertextBlob": blob + b"\x00", "EncryptionContext": context},
    }
    messages = set()
    for name, params in attempts.items():
        error = await error_of(kms.decrypt(**params))
        assert error.code == "InvalidCiphertextException", name
        messages.add(error.message)
        error = await error_of(kms.decrypt(KeyId=key_id, **params))
        assert error.code in {"InvalidCiphertextException", "IncorrectKeyException"}, name
        if error.code == "InvalidCiphertextException":
            messages.add(error.message)
    assert len(messages) == 1, messages
    (message,) = messages
    assert message
    for hint in ("tag", "context", "material", "length", "version", "short"):
        assert hint not in message.lower()
    # The untouched blob still decrypts: each refusal above was the change, not the blob.
    assert (await kms.decrypt(CiphertextBlob=blob, EncryptionContext=context))[
        "Plaintext"
    ] == plaintext


@pytest.mark.anyio
async def test_context_encoding_is_unambiguous(kms: Any, key_id: str) -> None:
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"ab": "c"}))[
        "CiphertextBlob"
    ]
    for other in ({"a": "bc"}, {"abc": ""}, {"": "abc"}, {"ab": "c", "": ""}):
        error = await error_of(kms.decrypt(CiphertextBlob=blob, EncryptionContext=other))
        assert error.code == "InvalidCiphertextException", other
    decrypted = await kms.decrypt(CiphertextBlob=blob, EncryptionContext={"ab": "c"})
    assert decrypted["Plaintext"] == b"x"


@pytest.mark.anyio
async def test_context_order_does_not_matter(kms: Any, key_id: str) -> None:
    forward = {"a": "1", "b": "2", "c": "3"}
    backward = dict(reversed(list(forward.items())))
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext=forward))[
        "CiphertextBlob"
    ]
    decrypted = await kms.decrypt(CiphertextBlob=blob, EncryptionContext=backward)
    assert decrypted["Plaintext"] == b"x"


@pytest.mark.anyio
async def test_decrypt_with_another_keys_id_is_incorrect_key(kms: Any, key_id: str) -> None:
    other = await new_key(kms, Description="other")
    await kms.create_alias(AliasName="alias/other", TargetKeyId=other["KeyId"])
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=b"mine"))["CiphertextBlob"]
    for wrong in (other["KeyId"], other["Arn"], "alias/other", alias_arn("alias/other")):
        error = await error_of(kms.decrypt(CiphertextBlob=blob, KeyId=wrong))
        assert error.code == "IncorrectKeyException", wrong
    # The other key's own blobs still decrypt with its id.
    own = (await kms.encrypt(KeyId=other["KeyId"], Plaintext=b"theirs"))["CiphertextBlob"]
    decrypted = await kms.decrypt(CiphertextBlob=own, KeyId=other["KeyId"])
    assert decrypted["Plaintext"] == b"theirs"


@pytest.mark.anyio
async def test_blob_of_a_disabled_key_is_refused_as_disabled(kms: Any, key_id: str) -> None:
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=b"x"))["CiphertextBlob"]
    await kms.disable_key(KeyId=key_id)
    error = await error_of(kms.decrypt(CiphertextBlob=blob))
    assert error.code == "DisabledException"
    assert error.message == f"{key_arn(key_id)} is disabled."
    error = await error_of(kms.encrypt(KeyId=key_id, Plaintext=b"x"))
    assert error.code == "DisabledException"
    await kms.enable_key(KeyId=key_id)
    assert (await kms.decrypt(CiphertextBlob=blob))["Plaintext"] == b"x"


@pytest.mark.anyio
async def test_empty_context_is_no_context(kms: Any, key_id: str) -> None:
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={}))["CiphertextBlob"]
    assert (await kms.decrypt(CiphertextBlob=blob))["Plaintext"] == b"x"
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=b"y"))["CiphertextBlob"]
    assert (await kms.decrypt(CiphertextBlob=blob, EncryptionContext={}))["Plaintext"] == b"y"


@pytest.mark.anyio
async def test_asymmetric_algorithm_on_a_symmetric_key(kms: Any, key_id: str) -> None:
    error = await error_of(
        kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    )
    assert error.code == "InvalidKeyUsageException"
