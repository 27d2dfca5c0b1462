"""Data keys, ReEncrypt, GenerateRandom and DryRun."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.engine.engine_support import error_codes, error_of, key_arn, new_key


@pytest.fixture
async def key_id(kms: Any) -> AsyncIterator[str]:
    """A fresh symmetric key."""
    yield str((await new_key(kms))["KeyId"])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({"KeySpec": "AES_256"}, 32),
        ({"KeySpec": "AES_128"}, 16),
        ({"NumberOfBytes": 1}, 1),
        ({"NumberOfBytes": 64}, 64),
        ({"NumberOfBytes": 1024}, 1024),
    ],
)
async def test_generate_data_key(kms: Any, key_id: str, params: dict[str, Any], size: int) -> None:
    context = {"bucket": "b1"}
    data_key = await kms.generate_data_key(KeyId=key_id, EncryptionContext=context, **params)
    plaintext = data_key["Plaintext"]
    assert len(plaintext) == size
    assert data_key["KeyId"] == key_arn(key_id)
    decrypted = await kms.decrypt(
        CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=context
    )
    assert decrypted["Plaintext"] == plaintext
    error = await error_of(kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"]))
    assert error.code == "InvalidCiphertextException"
    again = await kms.generate_data_key(KeyId=key_id, EncryptionContext=context, **params)
    assert again["Plaintext"] != plaintext or size == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"KeySpec": "AES_256", "NumberOfBytes": 32},
        {"NumberOfBytes": 0},
        {"NumberOfBytes": 1025},
        {"KeySpec": "AES_512"},
    ],
    ids=["neither", "both", "zero", "too-many", "bad-spec"],
)
async def test_generate_data_key_validation(kms: Any, key_id: str, params: dict[str, Any]) -> None:
    error = await error_of(kms.generate_data_key(KeyId=key_id, **params))
    assert error.code == "ValidationException"
    error = await error_of(kms.generate_data_key_without_plaintext(KeyId=key_id, **params))
    assert error.code == "ValidationException"


@pytest.mark.anyio
async def test_generate_data_key_without_plaintext(kms: Any, key_id: str) -> None:
    response = await kms.generate_data_key_without_plaintext(
        KeyId=key_id, KeySpec="AES_256", EncryptionContext={"a": "b"}
    )
    assert "Plaintext" not in response
    assert response["KeyId"] == key_arn(key_id)
    decrypted = await kms.decrypt(
        CiphertextBlob=response["CiphertextBlob"], EncryptionContext={"a": "b"}
    )
    assert len(decrypted["Plaintext"]) == 32


@pytest.mark.anyio
async def test_data_keys_need_an_enabled_key(kms: Any, key_id: str) -> None:
    await kms.disable_key(KeyId=key_id)
    error = await error_of(kms.generate_data_key(KeyId=key_id, KeySpec="AES_256"))
    assert error.code == "DisabledException"
    error = await error_of(kms.generate_data_key_without_plaintext(KeyId=key_id, KeySpec="AES_256"))
    assert error.code == "DisabledException"


@pytest.mark.anyio
async def test_re_encrypt(kms: Any, key_id: str) -> None:
    destination = (await new_key(kms))["KeyId"]
    await kms.create_alias(AliasName="alias/destination", TargetKeyId=destination)
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=b"moving", EncryptionContext={"v": "1"}))[
        "CiphertextBlob"
    ]
    moved = await kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"v": "1"},
        DestinationKeyId="alias/destination",
        DestinationEncryptionContext={"v": "2"},
    )
    assert moved["SourceKeyId"] == key_arn(key_id)
    assert moved["KeyId"] == key_arn(destination)
    assert moved["CiphertextBlob"] != blob
    decrypted = await kms.decrypt(
        CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"v": "2"}
    )
    assert decrypted["Plaintext"] == b"moving"
    assert decrypted["KeyId"] == key_arn(destination)
    error = await error_of(
        kms.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"v": "1"})
    )
    assert error.code == "InvalidCiphertextException"

    # Same key, new context, with SourceKeyId given.
    same = await kms.re_encrypt(
        CiphertextBlob=blob,
        SourceKeyId=key_id,
        SourceEncryptionContext={"v": "1"},
        DestinationKeyId=key_id,
    )
    assert (await kms.decrypt(CiphertextBlob=same["CiphertextBlob"]))["Plaintext"] == b"moving"

    source = {"CiphertextBlob": blob, "SourceEncryptionContext": {"v": "1"}}
    calls: list[tuple[str, dict[str, Any]]] = [
        (
            "re_encrypt",
            {**source, "SourceEncryptionContext": {"v": "x"}, "DestinationKeyId": key_id},
        ),
        ("re_encrypt", {**source, "SourceKeyId": destination, "DestinationKeyId": key_id}),
        ("re_encrypt", {**source, "DestinationKeyId": "alias/nowhere"}),
    ]
    assert await error_codes(kms, calls) == [
        "InvalidCiphertextException",
        "IncorrectKeyException",
        "NotFoundException",
    ]
    await kms.disable_key(KeyId=destination)
    error = await error_of(
        kms.re_encrypt(
            CiphertextBlob=blob, SourceEncryptionContext={"v": "1"}, DestinationKeyId=destination
        )
    )
    assert error.code == "DisabledException"


@pytest.mark.anyio
@pytest.mark.parametrize("size", [1, 16, 1024])
async def test_generate_random(kms: Any, size: int) -> None:
    first = (await kms.generate_random(NumberOfBytes=size))["Plaintext"]
    second = (await kms.generate_random(NumberOfBytes=size))["Plaintext"]
    assert len(first) == len(second) == size
    assert first != second or size == 1


@pytest.mark.anyio
@pytest.mark.parametrize("size", [0, 1025, -1])
async def test_generate_random_bounds(kms: Any, size: int) -> None:
    assert (await error_of(kms.generate_random(NumberOfBytes=size))).code == "ValidationException"


@pytest.mark.anyio
async def test_dry_run(kms: Any, key_id: str) -> None:
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=b"x"))["CiphertextBlob"]
    calls: list[tuple[str, dict[str, Any]]] = [
        ("encrypt", {"KeyId": key_id, "Plaintext": b"x", "DryRun": True}),
        ("decrypt", {"CiphertextBlob": blob, "DryRun": True}),
        ("generate_data_key", {"KeyId": key_id, "KeySpec": "AES_256", "DryRun": True}),
        (
            "generate_data_key_without_plaintext",
            {"KeyId": key_id, "NumberOfBytes": 8, "DryRun": True},
        ),
        ("re_encrypt", {"CiphertextBlob": blob, "DestinationKeyId": key_id, "DryRun": True}),
    ]
    assert await error_codes(kms, calls) == ["DryRunOperationException"] * len(calls)
    # A dry run that would fail reports the real error.
    await kms.disable_key(KeyId=key_id)
    error = await error_of(kms.encrypt(KeyId=key_id, Plaintext=b"x", DryRun=True))
    assert error.code == "DisabledException"
