"""No plaintext, data key or ciphertext ever reaches the audit store's files.

Each test sends requests carrying distinctive secrets (successful, refused and malformed
ones), collects every secret the service saw or returned, and scans the raw bytes of
``audit.sqlite3`` and its WAL for each of them: raw, base64 (both alphabets, padded or not)
and hex.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

import kms_actors
from tests.audit_e2e.audit_e2e_support import (
    NOBODY_ACCESS_KEY_ID,
    NOBODY_SECRET_ACCESS_KEY,
    ClientFactory,
    assert_no_secrets,
    events,
)
from tests.http.conftest import ServerProcess, raw_request

CONTEXT = {"app": "secrets-scan"}


def _marker(label: str, size: int = 48) -> bytes:
    """Return a distinctive plaintext: a readable label, then random bytes."""
    return f"SECRET-{label}-{uuid.uuid4().hex}-".encode() + os.urandom(size)


def _refused(call: Any, /, **params: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**params)
    code: str = caught.value.response["Error"]["Code"]
    return code


def _tampered(blob: bytes) -> bytes:
    return blob[:-1] + bytes([blob[-1] ^ 1])


def test_http_requests_leave_no_secret_in_the_audit_files(
    server: ServerProcess, make_client: ClientFactory
) -> None:
    kms = make_client(validate=False)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    secrets: dict[str, bytes] = {"plaintext": _marker("http-plaintext")}
    blob = kms.encrypt(KeyId=key, Plaintext=secrets["plaintext"], EncryptionContext=CONTEXT)[
        "CiphertextBlob"
    ]
    secrets["ciphertext"] = blob
    decrypted = kms.decrypt(CiphertextBlob=blob, EncryptionContext=CONTEXT)["Plaintext"]
    assert decrypted == secrets["plaintext"]
    secrets["re-encrypted"] = kms.re_encrypt(
        CiphertextBlob=blob, SourceEncryptionContext=CONTEXT, DestinationKeyId=other
    )["CiphertextBlob"]
    data_key = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=CONTEXT)
    secrets["data key"] = data_key["Plaintext"]
    secrets["wrapped data key"] = data_key["CiphertextBlob"]
    secrets["wrapped data key 2"] = kms.generate_data_key_without_plaintext(
        KeyId=key, NumberOfBytes=64
    )["CiphertextBlob"]
    secrets["random"] = kms.generate_random(NumberOfBytes=64)["Plaintext"]

    # Refused and malformed requests carry secrets too.
    secrets["tampered"] = _tampered(blob)
    assert _refused(kms.decrypt, CiphertextBlob=secrets["tampered"]) == (
        "InvalidCiphertextException"
    )
    assert _refused(kms.decrypt, CiphertextBlob=blob) == "InvalidCiphertextException"  # no context
    secrets["oversize"] = _marker("http-oversize", 4096)
    assert _refused(kms.encrypt, KeyId=key, Plaintext=secrets["oversize"]) == (
        "ValidationException"
    )
    secrets["denied"] = _marker("http-denied")
    nobody = make_client(
        access_key_id=NOBODY_ACCESS_KEY_ID, secret_access_key=NOBODY_SECRET_ACCESS_KEY
    )
    assert _refused(nobody.encrypt, KeyId=key, Plaintext=secrets["denied"]) == (
        "AccessDeniedException"
    )
    assert _refused(nobody.decrypt, CiphertextBlob=blob, EncryptionContext=CONTEXT) == (
        "AccessDeniedException"
    )
    # A blob that is not base64 fails to decode: the raw JSON is all the audit layer has.
    not_base64 = "not base64! " + _marker("http-raw").hex()
    secrets["not base64"] = not_base64.encode()
    body = json.dumps({"KeyId": key, "Plaintext": not_base64}).encode()
    reply = raw_request(server.endpoint, body, target="TrentService.Encrypt")
    assert reply.status == 400
    # A request that does not decode (a context that is no map) still names its plaintext.
    secrets["undecodable"] = os.urandom(32)
    plaintext = base64.b64encode(secrets["undecodable"]).decode()
    body = json.dumps({"KeyId": key, "Plaintext": plaintext, "EncryptionContext": 7}).encode()
    assert raw_request(server.endpoint, body, target="TrentService.Encrypt").status == 400

    recorded = [e for e in events(server.data_dir) if e.get("userAgent", "").startswith("Boto3")]
    assert any(e.get("errorCode") == "InvalidCiphertextException" for e in recorded)
    assert_no_secrets(server.data_dir, secrets)


@pytest.mark.anyio
async def test_embedded_requests_leave_no_secret_in_the_audit_files(
    tmp_path: pathlib.Path,
) -> None:
    data_dir = tmp_path / "data"
    secrets: dict[str, bytes] = {"plaintext": _marker("embedded-plaintext")}
    async with kms_actors.open_kms(data_dir) as kms:
        key = (await kms.create_key())["KeyMetadata"]["KeyId"]
        blob = (
            await kms.encrypt(KeyId=key, Plaintext=secrets["plaintext"], EncryptionContext=CONTEXT)
        )["CiphertextBlob"]
        secrets["ciphertext"] = blob
        await kms.decrypt(CiphertextBlob=blob, EncryptionContext=CONTEXT)
        data_key = await kms.generate_data_key(KeyId=key, NumberOfBytes=48)
        secrets["data key"] = data_key["Plaintext"]
        secrets["wrapped data key"] = data_key["CiphertextBlob"]
        secrets["random"] = (await kms.generate_random(NumberOfBytes=32))["Plaintext"]
        secrets["tampered"] = _tampered(blob)
        with pytest.raises(kms_actors.KmsError):
            await kms.decrypt(CiphertextBlob=secrets["tampered"], EncryptionContext=CONTEXT)
        secrets["denied"] = _marker("embedded-denied")
        nobody = kms.as_caller(arn="arn:aws:iam::111122223333:user/nobody")
        with pytest.raises(kms_actors.KmsError):
            await nobody.encrypt(KeyId=key, Plaintext=secrets["denied"])
        # A secret in a member the operation does not have is ignored, never stored.
        secrets["unknown member"] = _marker("embedded-unknown")
        await kms.describe_key(KeyId=key, Plaintext=secrets["unknown member"])
        assert_no_secrets(data_dir, secrets)  # the WAL, while the service runs
    assert_no_secrets(data_dir, secrets)  # the database after the final checkpoint
    assert len(events(data_dir)) == 8
