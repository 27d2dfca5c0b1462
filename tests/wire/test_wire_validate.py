"""Request validation: AWS's exceptions and AWS's words, for JSON and embedded requests."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from kms_actors.errors import SerializationException, ValidationException
from kms_actors.wire import OPERATIONS, _model, _validate, validate

KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def invalid(operation: str, params: Mapping[str, Any], *, blobs_are_base64: bool = True) -> str:
    with pytest.raises(ValidationException) as caught:
        validate(operation, params, blobs_are_base64=blobs_are_base64)
    return caught.value.message


def malformed(operation: str, params: Mapping[str, Any], *, blobs_are_base64: bool = True) -> str:
    with pytest.raises(SerializationException) as caught:
        validate(operation, params, blobs_are_base64=blobs_are_base64)
    return caught.value.message


def one(failure: str) -> str:
    return f"1 validation error detected: {failure}"


# --- Constraint failures -------------------------------------------------------------------------


def test_valid_requests_pass() -> None:
    validate("Encrypt", {"KeyId": KEY, "Plaintext": b64(b"secret")}, blobs_are_base64=True)
    validate("Encrypt", {"KeyId": KEY, "Plaintext": b"secret"}, blobs_are_base64=False)
    validate("ListKeys", {}, blobs_are_base64=True)
    validate("GenerateRandom", {"NumberOfBytes": 1024}, blobs_are_base64=True)


def test_missing_required_member() -> None:
    assert invalid("DescribeKey", {}) == one(
        "Value null at 'keyId' failed to satisfy constraint: Member must not be null"
    )


def test_null_counts_as_missing() -> None:
    assert invalid("DescribeKey", {"KeyId": None}) == one(
        "Value null at 'keyId' failed to satisfy constraint: Member must not be null"
    )


def test_multiple_errors_are_counted_and_joined() -> None:
    assert invalid("ScheduleKeyDeletion", {"PendingWindowInDays": 0}) == (
        "2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: "
        "Member must not be null; Value '0' at 'pendingWindowInDays' failed to satisfy "
        "constraint: Member must have value greater than or equal to 1"
    )


def test_at_most_ten_errors_are_reported() -> None:
    tags = [{"TagKey": ""} for _ in range(12)]  # each: tagKey too short, tagValue missing
    message = invalid("TagResource", {"KeyId": KEY, "Tags": tags})
    assert message.startswith("10 validation errors detected: ")
    assert message.count("failed to satisfy constraint") == 10


def test_string_too_long_echoes_the_value() -> None:
    key_id = "k" * 2049
    assert invalid("DescribeKey", {"KeyId": key_id}) == one(
        f"Value '{key_id}' at 'keyId' failed to satisfy constraint: "
        "Member must have length less than or equal to 2048"
    )


def test_string_too_short() -> None:
    assert invalid("DescribeKey", {"KeyId": ""}) == one(
        "Value '' at 'keyId' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_enum_violation_lists_the_model_values() -> None:
    values = ", ".join(_model.shape("KeySpec").enum)
    assert values.startswith("RSA_2048, RSA_3072")
    assert invalid("CreateKey", {"KeySpec": "FOO"}) == one(
        "Value 'FOO' at 'keySpec' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{values}]"
    )


def test_data_key_spec_enum() -> None:
    assert invalid("GenerateDataKey", {"KeyId": KEY, "KeySpec": "AES_512"}) == one(
        "Value 'AES_512' at 'keySpec' failed to satisfy constraint: "
        "Member must satisfy enum value set: [AES_256, AES_128]"
    )


@pytest.mark.parametrize(
    ("operation", "params", "member", "value", "rule"),
    [
        (
            "ScheduleKeyDeletion",
            {"KeyId": KEY},
            "PendingWindowInDays",
            0,
            "greater than or equal to 1",
        ),
        (
            "ScheduleKeyDeletion",
            {"KeyId": KEY},
            "PendingWindowInDays",
            366,
            "less than or equal to 365",
        ),
        ("ListKeys", {}, "Limit", 0, "greater than or equal to 1"),
        ("ListKeys", {}, "Limit", 1001, "less than or equal to 1000"),
        ("GenerateRandom", {}, "NumberOfBytes", 0, "greater than or equal to 1"),
        ("GenerateRandom", {}, "NumberOfBytes", 1025, "less than or equal to 1024"),
    ],
)
def test_integer_ranges(
    operation: str, params: dict[str, Any], member: str, value: int, rule: str
) -> None:
    path = member[0].lower() + member[1:]
    assert invalid(operation, {**params, member: value}) == one(
        f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value {rule}"
    )


def test_fraction_where_an_integer_belongs_is_truncated() -> None:
    validate("ListKeys", {"Limit": 5.9}, blobs_are_base64=True)
    assert invalid("ListKeys", {"Limit": 0.5}) == one(
        "Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )


def test_list_too_long() -> None:
    tokens = [f"token{i}" for i in range(11)]
    assert invalid("Encrypt", {"KeyId": KEY, "Plaintext": b64(b"x"), "GrantTokens": tokens}) == one(
        f"Value '[{', '.join(tokens)}]' at 'grantTokens' failed to satisfy constraint: "
        "Member must have length less than or equal to 10"
    )


def test_list_element_failures_are_reported_once_with_every_element_rule() -> None:
    params = {"KeyId": KEY, "Plaintext": b64(b"x"), "GrantTokens": ["a", "", "b"]}
    assert invalid("Encrypt", params) == one(
        "Value '[a, , b]' at 'grantTokens' failed to satisfy constraint: Member must satisfy "
        "constraint: [Member must have length less than or equal to 8192, "
        "Member must have length greater than or equal to 1]"
    )


def test_list_of_enums() -> None:
    values = ", ".join(_model.shape("GrantOperation").enum)
    params = {"KeyId": KEY, "GranteePrincipal": "p", "Operations": ["Encrypt", "Nope"]}
    assert invalid("CreateGrant", params) == one(
        "Value '[Encrypt, Nope]' at 'operations' failed to satisfy constraint: Member must "
        f"satisfy constraint: [Member must satisfy enum value set: [{values}]]"
    )


@pytest.mark.parametrize("blobs_are_base64", [True, False])
def test_sensitive_plaintext_too_long_is_not_echoed(blobs_are_base64: bool) -> None:
    plaintext = b"SECRET-" * 600
    sent = b64(plaintext) if blobs_are_base64 else plaintext
    message = invalid(
        "Encrypt", {"KeyId": KEY, "Plaintext": sent}, blobs_are_base64=blobs_are_base64
    )
    assert message == one(
        "Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096"
    )
    assert "SECRET" not in message and b64(plaintext)[:20] not in message


def test_empty_plaintext() -> None:
    assert invalid("Encrypt", {"KeyId": KEY, "Plaintext": ""}) == one(
        "Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_blob_lengths_count_decoded_bytes() -> None:
    validate("Encrypt", {"KeyId": KEY, "Plaintext": b64(b"x" * 4096)}, blobs_are_base64=True)
    assert invalid("Decrypt", {"CiphertextBlob": b64(b"c" * 6145)}) == one(
        "Value at 'ciphertextBlob' failed to satisfy constraint: "
        "Member must have length less than or equal to 6144"
    )


def test_sensitive_strings_are_not_echoed() -> None:
    params = {
        "CustomKeyStoreName": "store",
        "XksProxyAuthenticationCredential": {
            "AccessKeyId": "HUSH",
            "RawSecretAccessKey": "tiny-secret",
        },
    }
    message = invalid("CreateCustomKeyStore", params)
    assert "HUSH" not in message and "tiny-secret" not in message
    assert "Value at 'xksProxyAuthenticationCredential.accessKeyId' failed" in message
    assert "Value at 'xksProxyAuthenticationCredential.rawSecretAccessKey' failed" in message


def test_nested_tag_paths() -> None:
    tags = [{"TagKey": "ok", "TagValue": "v"}, {"TagKey": "", "TagValue": "v"}, {"TagKey": "k"}]
    assert invalid("CreateKey", {"Tags": tags}) == (
        "2 validation errors detected: Value '' at 'tags.2.member.tagKey' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1; Value null at "
        "'tags.3.member.tagValue' failed to satisfy constraint: Member must not be null"
    )


def test_pattern_violation() -> None:
    assert invalid("CreateAlias", {"AliasName": "alias/my alias", "TargetKeyId": KEY}) == one(
        "Value 'alias/my alias' at 'aliasName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
    )


def test_pattern_uses_full_match_and_java_character_classes() -> None:
    # MarkerType's pattern has no anchors: Java's matches() still needs the whole string.
    validate("ListKeys", {"Marker": "abc def"}, blobs_are_base64=True)
    assert "regular expression pattern" in invalid("ListKeys", {"Marker": "abc\u0100"})
    # PolicyNameType is [\w]+, which is ASCII-only in Java.
    validate("GetKeyPolicy", {"KeyId": KEY, "PolicyName": "default"}, blobs_are_base64=True)
    assert "regular expression pattern: [\\w]+" in invalid(
        "GetKeyPolicy", {"KeyId": KEY, "PolicyName": "d\u00e9faut"}
    )


def test_unknown_members_are_ignored() -> None:
    validate("DescribeKey", {"KeyId": KEY, "Bogus": {"x": [1]}}, blobs_are_base64=True)


def test_every_operation_compiles() -> None:
    for operation in OPERATIONS:
        try:
            validate(operation, {}, blobs_are_base64=True)
        except ValidationException as error:
            assert "Member must not be null" in error.message


def test_checks_are_compiled_once() -> None:
    validate("Encrypt", {"KeyId": KEY, "Plaintext": b64(b"x")}, blobs_are_base64=True)
    compiled = _validate._REQUESTS["Encrypt"]
    validate("Encrypt", {"KeyId": KEY, "Plaintext": b64(b"y")}, blobs_are_base64=False)
    assert _validate._REQUESTS["Encrypt"] is compiled


# --- Wrong types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        ("DescribeKey", {"KeyId": 5}, "NUMBER_VALUE can not be converted to a String"),
        ("DescribeKey", {"KeyId": True}, "TRUE_VALUE can not be converted to a String"),
        ("DescribeKey", {"KeyId": ["k"]}, "Start of list found where not expected"),
        ("DescribeKey", {"KeyId": {}}, "Start of structure or map found where not expected."),
        ("ListKeys", {"Limit": "5"}, "STRING_VALUE can not be converted to an Integer"),
        ("ListKeys", {"Limit": False}, "FALSE_VALUE can not be converted to an Integer"),
        ("Encrypt", {"DryRun": "yes"}, "STRING_VALUE can not be converted to a Boolean"),
        ("Encrypt", {"Plaintext": 7}, "NUMBER_VALUE can not be converted to a Blob"),
        ("Encrypt", {"GrantTokens": "t"}, "Expected list or null"),
        ("Encrypt", {"GrantTokens": {}}, "Start of structure or map found where not expected."),
        ("Encrypt", {"GrantTokens": [1]}, "NUMBER_VALUE can not be converted to a String"),
        ("Encrypt", {"EncryptionContext": "x"}, "Expected map or null"),
        ("Encrypt", {"EncryptionContext": ["x"]}, "Start of list found where not expected"),
        (
            "Encrypt",
            {"EncryptionContext": {"a": 1}},
            "NUMBER_VALUE can not be converted to a String",
        ),
        ("CreateKey", {"Tags": ["x"]}, "Expected null"),
        ("CreateKey", {"Tags": [[]]}, "Start of list found where not expected"),
        (
            "ImportKeyMaterial",
            {"ValidTo": "2030"},
            "STRING_VALUE can not be converted to a Timestamp",
        ),
    ],
)
def test_wrong_types_are_serialization_errors(
    operation: str, params: dict[str, Any], message: str
) -> None:
    assert malformed(operation, params) == message


def test_wrong_type_wins_over_constraint_failures() -> None:
    # AWS reads the whole request before validating it: a type error is all it reports.
    assert malformed("ScheduleKeyDeletion", {"PendingWindowInDays": "7"}) == (
        "STRING_VALUE can not be converted to an Integer"
    )


def test_top_level_must_be_an_object() -> None:
    assert malformed("ListKeys", []) == "Start of list found where not expected"  # type: ignore[arg-type]


# --- Base64 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("aGk", "Base64 encoded length is expected a multiple of 4 bytes but found: 3"),
        ("aG k", "Invalid Base64 character: ' '"),
        ("aG=k", "Invalid Base64 character: '='"),
        ("aGk\u00e9", "Invalid Base64 character: '\u00e9'"),
        ("aGl=", "Invalid last non-pad Base64 character dectected"),
        ("====", "Invalid last non-pad Base64 character dectected"),
    ],
)
def test_invalid_base64(text: str, message: str) -> None:
    assert malformed("Decrypt", {"CiphertextBlob": text}) == message


def test_invalid_base64_in_a_sensitive_blob_is_not_echoed() -> None:
    assert malformed("Encrypt", {"KeyId": KEY, "Plaintext": "my secret!!!"}) == (
        "Invalid Base64 character"
    )


def test_bytes_are_not_base64_on_the_json_path() -> None:
    message = malformed("Decrypt", {"CiphertextBlob": b"raw"})
    assert message == "class bytes can not be converted to a Blob"


def test_embedded_blobs_are_bytes_or_str() -> None:
    for plaintext in (b"x", bytearray(b"x"), memoryview(b"x"), "x"):
        params = {"KeyId": KEY, "Plaintext": plaintext}
        validate("Encrypt", params, blobs_are_base64=False)
    assert invalid("Encrypt", {"KeyId": KEY, "Plaintext": "é" * 2049}, blobs_are_base64=False)
