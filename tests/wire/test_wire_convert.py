"""Decoding requests and encoding responses, checked against botocore's own (de)serialisers."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import botocore.session
import msgspec
import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from kms_actors.errors import (
    SerializationException,
    UnknownOperationException,
    ValidationException,
)
from kms_actors.wire import (
    decode_json_request,
    decode_request,
    request_type,
    shapes,
    to_json,
    to_python,
)

KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"
ARN = f"arn:aws:kms:us-east-1:111122223333:key/{KEY}"
BOTOCORE_KMS = botocore.session.get_session().get_service_model("kms")


def boto3_body(operation: str, params: dict[str, Any]) -> bytes:
    """Serialise ``params`` exactly as boto3 would send them."""
    serializer = create_serializer("json", include_validation=True)
    request = serializer.serialize_to_request(params, BOTOCORE_KMS.operation_model(operation))
    body: bytes = request["body"]
    return body


def boto3_parse(operation: str, body: bytes) -> dict[str, Any]:
    """Parse a JSON response body exactly as boto3 would."""
    output = BOTOCORE_KMS.operation_model(operation).output_shape
    parsed: dict[str, Any] = create_parser("json").parse(
        {"body": body, "headers": {}, "status_code": 200}, output
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


# --- Requests ------------------------------------------------------------------------------------


def test_boto3_encrypt_body_decodes() -> None:
    params = {
        "KeyId": KEY,
        "Plaintext": b"\x00secret\xff",
        "EncryptionContext": {"purpose": "test"},
        "GrantTokens": ["token"],
    }
    request = decode_json_request("Encrypt", boto3_body("Encrypt", params))
    assert request == shapes.EncryptRequest(
        key_id=KEY,
        plaintext=b"\x00secret\xff",
        encryption_context={"purpose": "test"},
        grant_tokens=["token"],
    )


def test_boto3_nested_and_timestamp_members_decode() -> None:
    tags: dict[str, Any] = {"Tags": [{"TagKey": "team", "TagValue": "kms"}], "Description": "d"}
    request = decode_json_request("CreateKey", boto3_body("CreateKey", tags))
    assert isinstance(request, shapes.CreateKeyRequest)
    assert request.tags == [shapes.Tag(tag_key="team", tag_value="kms")]
    valid_to = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    params: dict[str, Any] = {
        "KeyId": KEY,
        "ImportToken": b"t",
        "EncryptedKeyMaterial": b"m",
        "ValidTo": valid_to,
        "ExpirationModel": "KEY_MATERIAL_EXPIRES",
    }
    request = decode_json_request("ImportKeyMaterial", boto3_body("ImportKeyMaterial", params))
    assert isinstance(request, shapes.ImportKeyMaterialRequest)
    assert request.valid_to == valid_to.timestamp()


def test_empty_body_is_an_empty_request() -> None:
    assert decode_json_request("ListKeys", b"") == shapes.ListKeysRequest()
    with pytest.raises(ValidationException) as caught:
        decode_json_request("DescribeKey", b"")
    assert caught.value.message == (
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: "
        "Member must not be null"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", ""),
        (b'{"KeyId": "k",}', ""),
        (b"null", ""),
        (b"1", ""),
        (b'"KeyId"', ""),
        (b"[]", "Start of list found where not expected"),
        (b'{"KeyId": 1}', "NUMBER_VALUE can not be converted to a String"),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(SerializationException) as caught:
        decode_json_request("DescribeKey", body)
    assert caught.value.message == message


def test_unknown_operation_is_rejected_before_the_body_is_read() -> None:
    with pytest.raises(UnknownOperationException):
        decode_json_request("Nope", b"{")


def test_json_nulls_are_absent_members() -> None:
    body = b'{"KeyId": "k", "Plaintext": "aGk=", "GrantTokens": ["a", null], "DryRun": null}'
    assert decode_json_request("Encrypt", body) == shapes.EncryptRequest(
        key_id="k", plaintext=b"hi", grant_tokens=["a"]
    )


def test_json_fraction_for_an_integer_is_truncated() -> None:
    assert decode_json_request("ListKeys", b'{"Limit": 10.9}') == shapes.ListKeysRequest(limit=10)


def test_embedded_request_takes_boto3_conveniences() -> None:
    valid_to = datetime(2030, 1, 1)  # naive: UTC, as boto3 reads it
    request = decode_request(
        "ImportKeyMaterial",
        {
            "KeyId": KEY,
            "ImportToken": "token",
            "EncryptedKeyMaterial": memoryview(b"m"),
            "ValidTo": valid_to,
        },
        blobs_are_base64=False,
    )
    assert request == shapes.ImportKeyMaterialRequest(
        key_id=KEY,
        import_token=b"token",
        encrypted_key_material=b"m",
        valid_to=valid_to.replace(tzinfo=UTC).timestamp(),
    )
    other_zone = datetime(2030, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    request = decode_request(
        "ImportKeyMaterial",
        {"KeyId": KEY, "ImportToken": b"t", "EncryptedKeyMaterial": b"m", "ValidTo": other_zone},
        blobs_are_base64=False,
    )
    assert isinstance(request, shapes.ImportKeyMaterialRequest)
    assert request.valid_to == valid_to.replace(tzinfo=UTC).timestamp()


def test_embedded_bytes_are_not_base64_decoded() -> None:
    request = decode_request(
        "Encrypt", {"KeyId": KEY, "Plaintext": b"aGk="}, blobs_are_base64=False
    )
    assert isinstance(request, shapes.EncryptRequest)
    assert request.plaintext == b"aGk="


def test_any_mapping_will_do() -> None:
    params = MappingProxyType(
        {"KeyId": KEY, "Tags": (MappingProxyType({"TagKey": "a", "TagValue": "b"}),)}
    )
    request = decode_request("TagResource", params, blobs_are_base64=False)
    assert request == shapes.TagResourceRequest(
        key_id=KEY, tags=[shapes.Tag(tag_key="a", tag_value="b")]
    )


def test_requests_are_the_operation_request_type() -> None:
    request = decode_request("GenerateRandom", {"NumberOfBytes": 32}, blobs_are_base64=True)
    assert type(request) is request_type("GenerateRandom") is shapes.GenerateRandomRequest


# --- Responses -----------------------------------------------------------------------------------

CREATED = 1_700_000_000.25
DELETES = 1_702_592_000.0


def describe_key_response() -> shapes.DescribeKeyResponse:
    return shapes.DescribeKeyResponse(
        key_metadata=shapes.KeyMetadata(
            key_id=KEY,
            arn=ARN,
            aws_account_id="111122223333",
            creation_date=CREATED,
            deletion_date=DELETES,
            enabled=False,
            key_state="PendingDeletion",
            encryption_algorithms=["SYMMETRIC_DEFAULT"],
        )
    )


def test_to_python_converts_nested_timestamps_to_utc_datetimes() -> None:
    result = to_python("DescribeKey", describe_key_response())
    metadata = result["KeyMetadata"]
    assert metadata["CreationDate"] == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)
    assert metadata["CreationDate"].tzinfo is UTC
    assert metadata["DeletionDate"] == datetime.fromtimestamp(DELETES, tz=UTC)
    assert metadata["AWSAccountId"] == "111122223333"
    assert metadata["Enabled"] is False
    assert "Description" not in metadata and "ValidTo" not in metadata


def test_to_python_matches_boto3_parsing_of_to_json() -> None:
    cases: list[tuple[str, Any]] = [
        ("DescribeKey", describe_key_response()),
        (
            "GenerateDataKey",
            shapes.GenerateDataKeyResponse(
                ciphertext_blob=b"\x01\x02", plaintext=b"\x00" * 32, key_id=ARN
            ),
        ),
        (
            "ListAliases",
            shapes.ListAliasesResponse(
                aliases=[
                    shapes.AliasListEntry(alias_name="alias/a", creation_date=CREATED),
                    shapes.AliasListEntry(alias_name="alias/b"),
                ],
                truncated=False,
            ),
        ),
        (
            "ListKeyRotations",
            shapes.ListKeyRotationsResponse(
                rotations=[shapes.RotationsListEntry(key_id=KEY, rotation_date=DELETES)]
            ),
        ),
    ]
    for operation, response in cases:
        assert to_python(operation, response) == boto3_parse(operation, to_json(response))


def test_to_python_keeps_bytes() -> None:
    response = shapes.EncryptResponse(ciphertext_blob=b"\xffblob", key_id=ARN)
    assert to_python("Encrypt", response) == {"CiphertextBlob": b"\xffblob", "KeyId": ARN}


def test_to_python_of_an_empty_response() -> None:
    assert to_python("TagResource", shapes.TagResourceResponse()) == {}


def test_to_python_rejects_another_operations_response() -> None:
    with pytest.raises(TypeError):
        to_python("Encrypt", shapes.DecryptResponse())


def test_to_json_uses_base64_and_epoch_seconds() -> None:
    body = json.loads(to_json(shapes.EncryptResponse(ciphertext_blob=b"hi", key_id=ARN)))
    assert body == {"CiphertextBlob": base64.b64encode(b"hi").decode(), "KeyId": ARN}
    body = json.loads(to_json(describe_key_response()))
    assert body["KeyMetadata"]["CreationDate"] == CREATED
    assert msgspec.json.decode(to_json(shapes.TagResourceResponse())) == {}
