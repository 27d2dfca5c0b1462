"""Redaction: events keep what CloudTrail keeps and never a secret."""

from __future__ import annotations

import json
import pathlib
import string
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kms_actors.wire
from kms_actors.audit import api_call_event, encode_event, redact_request, redact_response

from .audit_support import ACCOUNT, KEY_ARN, KEY_ID, START, caller

MODEL = json.loads(
    (pathlib.Path(kms_actors.wire.__file__).parent / "kms-2014-11-01.json").read_text()
)
OPERATIONS = sorted(MODEL["operations"])

# Request members that carry secrets, blobs or bearer tokens: never recorded.
SECRET_MEMBERS = [
    "Plaintext",
    "CiphertextBlob",
    "Message",
    "Signature",
    "Mac",
    "PublicKey",
    "EncryptedKeyMaterial",
    "ImportToken",
    "GrantToken",
    "GrantTokens",
    "KeyStorePassword",
    "XksProxyAuthenticationCredential",
    "SharedSecretCiphertextBlob",
    "Recipient",
    "TrustAnchorCertificate",
]


def members(operation: str) -> list[str]:
    shape = MODEL["operations"][operation]["input"]["shape"]
    return list(MODEL["shapes"][shape]["members"])


def contains_bytes(value: Any) -> bool:
    if isinstance(value, bytes | bytearray | memoryview):
        return True
    if isinstance(value, dict):
        return any(contains_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_bytes(v) for v in value)
    return False


@settings(max_examples=300)
@given(
    operation=st.sampled_from(OPERATIONS),
    blob=st.binary(min_size=1, max_size=64),
    # Letters and digits only, so the marker is found as-is in the JSON (nothing escaped).
    secret=st.text(string.ascii_letters + string.digits, min_size=8, max_size=20).map(
        lambda s: f"SECRET-{s}"
    ),
)
def test_no_blob_or_secret_survives(operation: str, blob: bytes, secret: str) -> None:
    # Every member of the request is a blob, and every secret member also a string, a list
    # and a map holding a marker: none of it may reach the event.
    params: dict[str, Any] = {name: blob for name in members(operation)}
    for name in SECRET_MEMBERS:
        params[name] = blob
    redacted = redact_request(operation, params)
    assert not contains_bytes(redacted)
    for shape in (secret, [secret], {"AccessKeyId": secret, "RawSecretAccessKey": secret}):
        params = {name: shape for name in SECRET_MEMBERS}
        recorded = api_call_event(
            operation=operation,
            caller=caller(),
            params=params,
            event_time=START,
            request_id="r",
            resources=[KEY_ARN],
            response={name: shape for name in SECRET_MEMBERS},
        )
        assert secret.encode() not in encode_event(recorded)


def test_blob_under_an_allowed_name_is_dropped() -> None:
    assert (
        redact_request("Encrypt", {"KeyId": b"\x01\x02", "EncryptionContext": {"a": b"b"}}) is None
    )


def test_encrypt_keeps_key_context_algorithm_and_dry_run() -> None:
    params = {
        "KeyId": KEY_ID,
        "Plaintext": b"secret",
        "EncryptionContext": {"Department": "Engineering"},
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "GrantTokens": ["token"],
        "DryRun": True,
    }
    assert redact_request("Encrypt", params) == {
        "keyId": KEY_ID,
        "encryptionContext": {"Department": "Engineering"},
        "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "dryRun": True,
    }


def test_re_encrypt_keeps_both_sides_but_not_the_ciphertext() -> None:
    params = {
        "CiphertextBlob": b"blob",
        "SourceEncryptionContext": {"Project": "Alpha"},
        "DestinationKeyId": KEY_ID,
        "DestinationEncryptionContext": {"Level": "3A"},
    }
    assert redact_request("ReEncrypt", params) == {
        "sourceEncryptionContext": {"Project": "Alpha"},
        "destinationKeyId": KEY_ID,
        "destinationEncryptionContext": {"Level": "3A"},
    }


def test_data_key_keeps_spec_and_size() -> None:
    assert redact_request("GenerateDataKey", {"KeyId": KEY_ID, "NumberOfBytes": 32}) == {
        "keyId": KEY_ID,
        "numberOfBytes": 32,
    }
    assert redact_request("GenerateDataKeyWithoutPlaintext", {"KeySpec": "AES_256"}) == {
        "keySpec": "AES_256"
    }


def test_create_grant_keeps_grant_fields_not_tokens() -> None:
    params = {
        "KeyId": KEY_ARN,
        "GranteePrincipal": "arn:aws:iam::111122223333:role/app",
        "Operations": ["Encrypt", "RetireGrant"],
        "Constraints": {"EncryptionContextSubset": {"ContextKey1": "Value1"}},
        "GrantTokens": ["secret-token"],
        "Name": "app",
    }
    assert redact_request("CreateGrant", params) == {
        "keyId": KEY_ARN,
        "granteePrincipal": "arn:aws:iam::111122223333:role/app",
        "operations": ["Encrypt", "RetireGrant"],
        "constraints": {"encryptionContextSubset": {"ContextKey1": "Value1"}},
        "name": "app",
    }
    response = {"GrantId": "g-1", "GrantToken": "secret-token"}
    assert redact_response("CreateGrant", response, KEY_ARN) == {"grantId": "g-1", "keyId": KEY_ARN}


def test_retire_grant_never_keeps_the_grant_token() -> None:
    assert redact_request("RetireGrant", {"GrantToken": "secret"}) is None


def test_tags_as_cloudtrail_writes_them() -> None:
    tags = [{"TagKey": "Department", "TagValue": "IT"}]
    assert redact_request("TagResource", {"KeyId": KEY_ARN, "Tags": tags}) == {
        "keyId": KEY_ARN,
        "tags": [{"tagKey": "Department", "tagValue": "IT"}],
    }
    assert redact_request("UntagResource", {"KeyId": KEY_ARN, "TagKeys": ["Department"]}) == {
        "keyId": KEY_ARN,
        "tagKeys": ["Department"],
    }


def test_create_key_and_policies() -> None:
    params = {"Description": "app", "KeySpec": "SYMMETRIC_DEFAULT", "Policy": "{}"}
    assert redact_request("CreateKey", params) == {
        "description": "app",
        "keySpec": "SYMMETRIC_DEFAULT",
        "policy": "{}",
    }
    put = {"KeyId": KEY_ID, "PolicyName": "default", "Policy": "{}"}
    assert redact_request("PutKeyPolicy", put) == {
        "keyId": KEY_ID,
        "policyName": "default",
        "policy": "{}",
    }
    assert redact_request("GetKeyPolicy", {"KeyId": KEY_ID, "PolicyName": "default"}) == {
        "keyId": KEY_ID,
        "policyName": "default",
    }


def test_aliases_and_deletion_window() -> None:
    assert redact_request("CreateAlias", {"AliasName": "alias/a", "TargetKeyId": KEY_ID}) == {
        "aliasName": "alias/a",
        "targetKeyId": KEY_ID,
    }
    assert redact_request("ScheduleKeyDeletion", {"KeyId": KEY_ID, "PendingWindowInDays": 7}) == {
        "keyId": KEY_ID,
        "pendingWindowInDays": 7,
    }


def test_custom_key_store_never_keeps_passwords_or_credentials() -> None:
    params = {
        "CustomKeyStoreName": "store",
        "KeyStorePassword": "hunter2",
        "XksProxyAuthenticationCredential": {"AccessKeyId": "A", "RawSecretAccessKey": "S"},
    }
    assert redact_request("CreateCustomKeyStore", params) == {"customKeyStoreName": "store"}


def test_unknown_operation_keeps_only_the_key_id() -> None:
    assert redact_request("FutureOperation", {"KeyId": KEY_ID, "Secret": "x"}) == {"keyId": KEY_ID}


def test_key_metadata_in_create_key_response() -> None:
    metadata = {"AWSAccountId": ACCOUNT, "KeyId": KEY_ID, "Arn": KEY_ARN, "Enabled": True}
    elements = redact_response("CreateKey", {"KeyMetadata": {**metadata, "Odd": b"\x00"}}, KEY_ARN)
    assert elements == {
        "keyMetadata": {"AWSAccountId": ACCOUNT, "keyId": KEY_ID, "arn": KEY_ARN, "enabled": True},
        "keyId": KEY_ARN,
    }


@pytest.mark.parametrize("operation", ["Encrypt", "GenerateDataKey", "Decrypt", "ReEncrypt"])
def test_crypto_responses_are_never_recorded(operation: str) -> None:
    recorded = api_call_event(
        operation=operation,
        caller=caller(),
        params={"KeyId": KEY_ID},
        event_time=START,
        request_id="r",
        resources=[KEY_ARN],
        response={"Plaintext": b"data key", "CiphertextBlob": b"blob", "KeyId": KEY_ARN},
    )
    assert recorded.response_elements is None


DECODED_REQUESTS = {
    "Encrypt": {
        "KeyId": KEY_ARN,
        "Plaintext": "c2VjcmV0",
        "EncryptionContext": {"app": "billing"},
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "GrantTokens": ["token"],
        "DryRun": True,
    },
    "CreateGrant": {
        "KeyId": KEY_ID,
        "GranteePrincipal": "arn:aws:iam::111122223333:role/app",
        "Operations": ["Encrypt", "Decrypt"],
        "Constraints": {"EncryptionContextSubset": {"app": "billing"}},
        "Name": "app",
        "GrantTokens": ["token"],
    },
    "CreateKey": {
        "Description": "d",
        "Policy": '{"Version": "2012-10-17", "Statement": []}',
        "Tags": [{"TagKey": "team", "TagValue": "payments"}],
        "KeyUsage": "ENCRYPT_DECRYPT",
    },
    "TagResource": {"KeyId": KEY_ID, "Tags": [{"TagKey": "a", "TagValue": "b"}]},
    "ScheduleKeyDeletion": {"KeyId": KEY_ID, "PendingWindowInDays": 7},
}


@pytest.mark.parametrize("operation", sorted(DECODED_REQUESTS))
def test_a_decoded_request_is_redacted_like_its_json(operation: str) -> None:
    """The router hands over the decoded request; the event must be the same as from JSON."""
    body = json.dumps(DECODED_REQUESTS[operation]).encode()
    decoded = kms_actors.wire.decode_json_request(operation, body)
    from_struct = redact_request(operation, decoded)
    assert from_struct == redact_request(operation, json.loads(body))
    assert from_struct  # something was kept
    assert "c2VjcmV0" not in json.dumps(from_struct) and "token" not in json.dumps(from_struct)


def test_a_struct_built_with_wrong_types_is_redacted_like_a_mapping() -> None:
    """A request struct is not validated when built in code: its members get the same checks
    (a blob as the key id, a string as the context are dropped; scalars are kept as they are).
    """
    request = kms_actors.wire.decode_json_request("Encrypt", b'{"KeyId": "k", "Plaintext": "AA=="}')
    wrong = msgspec.structs.replace(
        request, key_id=b"\x01\x02", encryption_context="app=billing", dry_run=1
    )
    as_mapping = {"KeyId": b"\x01\x02", "EncryptionContext": "app=billing", "DryRun": 1}
    assert redact_request("Encrypt", wrong) == redact_request("Encrypt", as_mapping)
    assert redact_request("Encrypt", wrong) == {"dryRun": 1}
