"""The wire protocol with raw HTTP: every malformed request gets AWS's JSON error, never a crash."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import urllib.parse

import pytest

from kms_actors.auth import sign_headers
from kms_actors.wire import OPERATIONS
from tests.http.conftest import (
    ACCESS_KEY_ID,
    JSON_11,
    REGION,
    SECRET_ACCESS_KEY,
    RawReply,
    assert_aws_error,
    raw_request,
)

MIB = 1024 * 1024


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


def test_unknown_members_are_ignored_and_null_means_absent(endpoint: str) -> None:
    # Newer SDKs send members an older service does not know; AWS ignores them.
    for body in (b'{"Limit": 1, "SomeFutureMember": {"x": [1]}}', b'{"Limit": null}'):
        reply = raw_request(endpoint, body, target="TrentService.ListKeys")
        assert reply.status == 200, reply.body


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
    body = json.dumps({"Description": "x" * (MIB + 1)}).encode()
    reply = raw_request(endpoint, body, target="TrentService.CreateKey")
    document = assert_aws_error(reply, "RequestEntityTooLargeException", status=413)
    assert document.get("message")


@pytest.mark.parametrize(("size", "code"), [(MIB, "ValidationException"), (MIB + 1, "")])
def test_body_size_limit_is_exactly_1_mib(endpoint: str, size: int, code: str) -> None:
    # At the limit the body is read and validated (the description is too long); one byte more
    # and it is refused unread.
    prefix = b'{"Description": "'
    body = prefix + b"x" * (size - len(prefix) - 2) + b'"}'
    assert len(body) == size
    reply = raw_request(endpoint, body, target="TrentService.CreateKey")
    if code:
        assert_aws_error(reply, code)
    else:
        assert_aws_error(reply, "RequestEntityTooLargeException", status=413)


def test_oversized_chunked_body_is_413(endpoint: str) -> None:
    body = json.dumps({"Description": "x" * (2 * MIB)}).encode()
    url = f"{endpoint}/"
    headers = {"Content-Type": JSON_11, "X-Amz-Target": "TrentService.CreateKey"}
    headers |= sign_headers(
        method="POST",
        url=url,
        headers=headers,
        body=body,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        region=REGION,
        service="kms",
    )
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        chunks = (body[at : at + 65536] for at in range(0, len(body), 65536))
        connection.request("POST", "/", body=chunks, headers=headers, encode_chunked=True)
        response = connection.getresponse()
        reply = RawReply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        connection.close()
    assert_aws_error(reply, "RequestEntityTooLargeException", status=413)


def test_header_signature_over_unsigned_payload_is_refused(endpoint: str) -> None:
    # Only presigned URLs may leave the body unsigned; a signed header must cover the body.
    reply = raw_request(endpoint, b"{}", headers={"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
    assert_aws_error(reply, "InvalidSignatureException")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("PUT", "/"), ("DELETE", "/"), ("GET", "/nothing/here"), ("POST", "/other")],
)
def test_other_methods_and_paths_get_json_errors(endpoint: str, method: str, path: str) -> None:
    reply = raw_request(endpoint, b"{}", method=method, path=path, sign=False)
    assert 400 <= reply.status < 500, reply.status
    document = assert_aws_error(reply, reply.json()["__type"], status=reply.status)
    assert document["__type"] in {"SerializationException", "UnknownOperationException"}


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 10000 + b"\r\n\r\n",
    ],
    ids=["bad-method", "bad-content-length", "header-too-long"],
)
def test_malformed_http_is_a_client_error(endpoint: str, request_bytes: bytes) -> None:
    parts = urllib.parse.urlsplit(endpoint)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 ")), answer[:200]
    assert b"Traceback" not in answer


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
