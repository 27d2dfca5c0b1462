"""The wire protocol with raw HTTP: every malformed request gets AWS's JSON error, never a crash."""

from __future__ import annotations

import base64
import json

import pytest

from kms_actors.wire import OPERATIONS
from tests.http.conftest import JSON_11, RawReply, assert_aws_error, raw_request


def test_signed_request_succeeds_with_aws_headers(endpoint: str) -> None:
    reply = raw_request(endpoint, b'{"NumberOfBytes": 16}', target="TrentService.GenerateRandom")
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == JSON_11
    assert reply.headers["x-amzn-requestid"]
    assert len(base64.b64decode(reply.json()["Plaintext"])) == 16


def test_timestamps_are_epoch_seconds_and_blobs_base64(endpoint: str) -> None:
    reply = raw_request(endpoint, b'{"Description": "wire"}', target="TrentService.CreateKey")
    meta = reply.json()["KeyMetadata"]
    assert isinstance(meta["CreationDate"], int | float) and meta["CreationDate"] > 1.6e9
    body = json.dumps({"KeyId": meta["KeyId"], "Plaintext": base64.b64encode(b"hi").decode()})
    encrypted = raw_request(endpoint, body.encode(), target="TrentService.Encrypt").json()
    blob = encrypted["CiphertextBlob"]
    assert isinstance(blob, str) and base64.b64decode(blob, validate=True)
    decrypted = raw_request(
        endpoint, json.dumps({"CiphertextBlob": blob}).encode(), target="TrentService.Decrypt"
    ).json()
    assert base64.b64decode(decrypted["Plaintext"]) == b"hi"


def test_empty_body_means_no_parameters(endpoint: str) -> None:
    reply = raw_request(endpoint, b"", target="TrentService.ListKeys")
    assert reply.status == 200, reply.body
    assert "Keys" in reply.json()


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("TrentService.ListKeys", b"{not json"),
        ("TrentService.ListKeys", b'{"Limit": 1'),
        ("TrentService.ListKeys", b"[]"),
        ("TrentService.ListKeys", b'"a string"'),
        ("TrentService.ListKeys", b"\xff\xfe\x00"),
        ("TrentService.DescribeKey", b'{"KeyId": 5}'),
        ("TrentService.DescribeKey", b'{"KeyId": ["a"]}'),
        ("TrentService.ListKeys", b'{"Limit": "10"}'),
        ("TrentService.ListKeys", b'{"Limit": true}'),
        ("TrentService.CreateKey", b'{"Tags": {}}'),
        ("TrentService.Encrypt", b'{"KeyId": "alias/x", "Plaintext": "!!not base64"}'),
        (
            "TrentService.Encrypt",
            b'{"KeyId": "alias/x", "Plaintext": "aGk=", "EncryptionContext": []}',
        ),
    ],
    ids=[
        "malformed",
        "truncated",
        "array",
        "string",
        "not-utf8",
        "number-for-string",
        "list-for-string",
        "string-for-integer",
        "bool-for-integer",
        "map-for-list",
        "bad-base64",
        "list-for-map",
    ],
)
def test_undecodable_requests_are_serialization_errors(
    endpoint: str, target: str, body: bytes
) -> None:
    assert_aws_error(raw_request(endpoint, body, target=target), "SerializationException")


def test_missing_required_member_is_a_validation_error(endpoint: str) -> None:
    document = assert_aws_error(
        raw_request(endpoint, b"{}", target="TrentService.DescribeKey"), "ValidationException"
    )
    assert "keyId" in document["message"]


@pytest.mark.parametrize(
    "target",
    ["TrentService.Nope", "TrentService.", "TrentService.listKeys", "Foo.ListKeys", "ListKeys"],
)
def test_unknown_operations(endpoint: str, target: str) -> None:
    assert_aws_error(raw_request(endpoint, b"{}", target=target), "UnknownOperationException")


def test_missing_target_header_is_an_aws_error(endpoint: str) -> None:
    for sign in (True, False):
        reply = raw_request(endpoint, b'{"KeyId": "x"}', target=None, sign=sign)
        assert_aws_error(reply, "UnknownOperationException")


def test_oversized_body_is_413_with_a_json_error(endpoint: str) -> None:
    body = json.dumps({"Description": "x" * (1024 * 1024 + 1)}).encode()
    reply = raw_request(endpoint, body, target="TrentService.CreateKey")
    document = assert_aws_error(reply, "RequestEntityTooLargeException", status=413)
    assert document.get("message")


def test_largest_allowed_body_is_read(endpoint: str) -> None:
    # Just under the 1 MiB limit: decoded and validated (the description is too long).
    body = json.dumps({"Description": "x" * (1024 * 1024 - 100)}).encode()
    reply = raw_request(endpoint, body, target="TrentService.CreateKey")
    assert_aws_error(reply, "ValidationException")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("PUT", "/"), ("DELETE", "/"), ("GET", "/nothing/here"), ("POST", "/other")],
)
def test_other_methods_and_paths_get_json_errors(endpoint: str, method: str, path: str) -> None:
    reply = raw_request(endpoint, b"{}", method=method, path=path, sign=False)
    assert 400 <= reply.status < 500, reply.status
    document = assert_aws_error(reply, reply.json()["__type"], status=reply.status)
    assert document["__type"] in {"SerializationException", "UnknownOperationException"}


def test_health_is_json(endpoint: str) -> None:
    reply = raw_request(endpoint, method="GET", path="/health", target=None, sign=False)
    assert reply.status == 200
    assert reply.json()["status"] == "ok"


# Every operation of the model, with an empty request, in a Region of its own: a result or an
# AWS error (unsupported, validation, not found), never a 5xx or a crash.
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operation_answers_cleanly(endpoint: str, operation: str) -> None:
    reply: RawReply = raw_request(
        endpoint, b"{}", target=f"TrentService.{operation}", region="sa-east-1"
    )
    assert reply.status in (200, 400), (reply.status, reply.body)
    assert reply.headers["x-amzn-requestid"]
    assert b"Traceback" not in reply.body
    if reply.status == 400:
        assert reply.json()["__type"] in {
            "UnsupportedOperationException",
            "ValidationException",
            "NotFoundException",
        }, reply.body
