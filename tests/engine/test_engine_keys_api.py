"""Key operations as AWS shows them: DescribeKey, ListKeys, identifiers, accounts and Regions."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from kms_actors import FakeClock
from tests.engine.engine_support import (
    ACCOUNT,
    alias_arn,
    error_codes,
    error_of,
    key_arn,
    new_key,
)

OTHER_ACCOUNT = "444455556666"


@pytest.mark.anyio
async def test_describe_key_shows_full_metadata(kms: Any, clock: FakeClock) -> None:
    created = await new_key(kms, Description="described")
    key_id = created["KeyId"]
    metadata = (await kms.describe_key(KeyId=key_id))["KeyMetadata"]
    assert metadata == created
    assert uuid.UUID(key_id).version == 4
    expected = {
        "AWSAccountId": ACCOUNT,
        "KeyId": key_id,
        "Arn": key_arn(key_id),
        "Enabled": True,
        "Description": "described",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": "Enabled",
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": False,
    }
    assert {k: metadata[k] for k in expected} == expected
    created_at = metadata["CreationDate"]
    assert isinstance(created_at, datetime)
    assert created_at.utcoffset() == timedelta(0)
    assert created_at.timestamp() == clock.now()
    assert "DeletionDate" not in metadata
    await kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    pending = (await kms.describe_key(KeyId=key_id))["KeyMetadata"]
    assert pending["DeletionDate"].timestamp() == clock.now() + 7 * 86_400
    assert pending["CreationDate"] == created_at


@pytest.mark.anyio
async def test_create_key_without_description(kms: Any) -> None:
    metadata = await new_key(kms)
    assert metadata["Description"] == ""
    assert metadata["KeyState"] == "Enabled"


@pytest.mark.anyio
async def test_every_identifier_form_resolves(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    await kms.create_alias(AliasName="alias/forms", TargetKeyId=key_id)
    for given in (key_id, key_arn(key_id), "alias/forms", alias_arn("alias/forms")):
        metadata = (await kms.describe_key(KeyId=given))["KeyMetadata"]
        assert metadata["KeyId"] == key_id, given
        await kms.disable_key(KeyId=given)
        await kms.enable_key(KeyId=given)


@pytest.mark.anyio
async def test_not_found_messages(kms: Any) -> None:
    unknown = str(uuid.uuid4())
    error = await error_of(kms.describe_key(KeyId=unknown))
    assert error.code == "NotFoundException"
    assert error.message == f"Key 'arn:aws:kms:us-east-1:111122223333:key/{unknown}' does not exist"
    error = await error_of(kms.describe_key(KeyId=key_arn(unknown)))
    assert error.code == "NotFoundException"
    assert error.message == f"Key '{key_arn(unknown)}' does not exist"
    error = await error_of(kms.encrypt(KeyId=unknown, Plaintext=b"x"))
    assert error.code == "NotFoundException"
    assert (await error_of(kms.describe_key(KeyId="foo"))).code == "NotFoundException"
    error = await error_of(kms.describe_key(KeyId="alias/x"))
    assert error.code == "NotFoundException"
    assert error.message == "Alias arn:aws:kms:us-east-1:111122223333:alias/x is not found."
    error = await error_of(kms.describe_key(KeyId=alias_arn("alias/x")))
    assert error.message == "Alias arn:aws:kms:us-east-1:111122223333:alias/x is not found."
    calls: list[tuple[str, dict[str, Any]]] = [
        ("enable_key", {"KeyId": unknown}),
        ("disable_key", {"KeyId": unknown}),
        ("schedule_key_deletion", {"KeyId": unknown, "PendingWindowInDays": 7}),
        ("list_resource_tags", {"KeyId": unknown}),
        ("generate_data_key", {"KeyId": "alias/x", "KeySpec": "AES_256"}),
    ]
    assert await error_codes(kms, calls) == ["NotFoundException"] * len(calls)


@pytest.mark.anyio
async def test_list_keys_pages(kms: Any) -> None:
    created = [(await new_key(kms, Description=f"k{i}"))["KeyId"] for i in range(7)]
    seen: list[str] = []
    pages: list[tuple[int, bool]] = []
    params: dict[str, Any] = {"Limit": 3}
    while True:
        page = await kms.list_keys(**params)
        seen += [entry["KeyId"] for entry in page["Keys"]]
        for entry in page["Keys"]:
            assert entry["KeyArn"] == key_arn(entry["KeyId"])
        pages.append((len(page["Keys"]), page["Truncated"]))
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        assert page["NextMarker"]
        params["Marker"] = page["NextMarker"]
    assert pages == [(3, True), (3, True), (1, False)]
    assert seen == created  # each exactly once, in creation order

    whole = await kms.list_keys(Limit=7)
    assert [e["KeyId"] for e in whole["Keys"]] == created
    assert whole["Truncated"] is False
    assert "NextMarker" not in whole
    assert [e["KeyId"] for e in (await kms.list_keys())["Keys"]] == created

    bogus = base64.urlsafe_b64encode(str(uuid.uuid4()).encode()).decode()
    for marker in ("garbage", bogus, "%%%"):
        error = await error_of(kms.list_keys(Marker=marker))
        assert error.code == "InvalidMarkerException", marker
    for limit in (0, 1001):
        assert (await error_of(kms.list_keys(Limit=limit))).code == "ValidationException"


@pytest.mark.anyio
async def test_list_keys_marker_is_not_valid_in_another_account(kms: Any) -> None:
    for _ in range(2):
        await new_key(kms)
    marker = (await kms.list_keys(Limit=1))["NextMarker"]
    other = kms.as_caller(account_id=OTHER_ACCOUNT)
    await new_key(other)
    error = await error_of(other.list_keys(Marker=marker))
    assert error.code == "InvalidMarkerException"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "where", [{"account_id": OTHER_ACCOUNT}, {"region": "eu-west-1"}], ids=["account", "region"]
)
async def test_keys_elsewhere_are_invisible(kms: Any, where: dict[str, str]) -> None:
    mine = (await new_key(kms))["KeyId"]
    my_blob = (await kms.encrypt(KeyId=mine, Plaintext=b"mine"))["CiphertextBlob"]
    other = kms.as_caller(**where)
    theirs = await new_key(other, Description="theirs")
    their_id, their_arn = theirs["KeyId"], theirs["Arn"]
    assert their_arn == key_arn(
        their_id,
        account=where.get("account_id", ACCOUNT),
        region=where.get("region", "us-east-1"),
    )
    await other.create_alias(AliasName="alias/theirs", TargetKeyId=their_id)
    their_blob = (await other.encrypt(KeyId=their_id, Plaintext=b"theirs"))["CiphertextBlob"]

    for given in (their_id, their_arn, "alias/theirs"):
        calls: list[tuple[str, dict[str, Any]]] = [
            ("describe_key", {"KeyId": given}),
            ("encrypt", {"KeyId": given, "Plaintext": b"x"}),
            ("disable_key", {"KeyId": given}),
            ("list_resource_tags", {"KeyId": given}),
            ("decrypt", {"CiphertextBlob": their_blob, "KeyId": given}),
        ]
        expected = ["NotFoundException"] * len(calls)
        if given == their_arn and "account_id" in where:
            # As AWS: another account's key is reachable by ARN for the operations AWS allows
            # across accounts, and then its key policy (the default: its own account only)
            # refuses; management operations never reach it.
            expected = [
                "AccessDeniedException",
                "AccessDeniedException",
                "NotFoundException",
                "NotFoundException",
                "AccessDeniedException",
            ]
        assert await error_codes(kms, calls) == expected, given
    error = await error_of(kms.describe_key(KeyId=their_id))
    assert error.message == f"Key '{key_arn(their_id)}' does not exist"
    foreign = "AccessDeniedException" if "account_id" in where else "InvalidCiphertextException"
    error = await error_of(kms.decrypt(CiphertextBlob=their_blob))
    assert error.code == foreign
    error = await error_of(other.decrypt(CiphertextBlob=my_blob))
    assert error.code == foreign
    assert [k["KeyId"] for k in (await kms.list_keys())["Keys"]] == [mine]
    assert [k["KeyId"] for k in (await other.list_keys())["Keys"]] == [their_id]
    assert (await kms.list_aliases())["Aliases"] == []
    error = await error_of(kms.create_alias(AliasName="alias/steal", TargetKeyId=their_id))
    assert error.code == "NotFoundException"
    # The owner is unaffected.
    assert (await other.decrypt(CiphertextBlob=their_blob))["Plaintext"] == b"theirs"
    assert (await other.describe_key(KeyId=their_id))["KeyMetadata"]["KeyState"] == "Enabled"


@pytest.mark.anyio
async def test_unimplemented_operation_is_unsupported(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    error = await error_of(
        kms.sign(KeyId=key_id, Message=b"x", SigningAlgorithm="RSASSA_PSS_SHA_256")
    )
    assert error.code == "UnsupportedOperationException"
    error = await error_of(kms.get_key_rotation_status(KeyId=key_id))
    assert error.code == "UnsupportedOperationException"


@pytest.mark.anyio
async def test_create_key_refuses_what_it_cannot_do(kms: Any) -> None:
    error = await error_of(kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY"))
    assert error.code == "UnsupportedOperationException"
    error = await error_of(kms.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="SIGN_VERIFY"))
    assert error.code == "ValidationException"
    error = await error_of(kms.create_key(Policy="not json"))
    assert error.code == "MalformedPolicyDocumentException"
    assert (await kms.list_keys())["Keys"] == []
