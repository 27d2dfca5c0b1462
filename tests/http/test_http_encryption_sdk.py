"""The AWS Encryption SDK for Python with a KMS master key provider pointed at our endpoint.

The provider builds its KMS clients from the ``botocore_session`` it is given, so the endpoint
goes into that session's shared config file (``endpoint_url``, honoured by botocore), exactly
as an application would configure it.
"""

from __future__ import annotations

import io
import os
import pathlib
from typing import Any

import aws_encryption_sdk  # type: ignore[import-untyped]
import boto3
import botocore.session
import pytest
from aws_encryption_sdk import (
    CommitmentPolicy,
    StrictAwsKmsMasterKeyProvider,
)
from aws_encryption_sdk.exceptions import (  # type: ignore[import-untyped]
    AWSEncryptionSDKClientError,
    DecryptKeyError,
)
from aws_encryption_sdk.internal.formatting.deserialize import (  # type: ignore[import-untyped]
    deserialize_header,
)
from cryptography.exceptions import InvalidTag

from tests.http.conftest import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY


@pytest.fixture
def botocore_session(endpoint: str, tmp_path: pathlib.Path) -> Any:
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\nregion = {REGION}\nendpoint_url = {endpoint}\n")
    session = botocore.session.Session()
    session.set_config_variable("config_file", str(config))
    session.set_credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    return session


@pytest.fixture
def key_arn(botocore_session: Any, endpoint: str) -> str:
    kms = boto3.session.Session(botocore_session=botocore_session).client("kms")
    assert kms.meta.endpoint_url == endpoint  # the config file points boto3 at us
    arn: str = kms.create_key(Description="encryption sdk")["KeyMetadata"]["Arn"]
    return arn


def test_encrypt_and_decrypt_a_message(botocore_session: Any, key_arn: str) -> None:
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    provider = StrictAwsKmsMasterKeyProvider(key_ids=[key_arn], botocore_session=botocore_session)
    plaintext = os.urandom(10_000)
    context = {"tenant": "sdk", "purpose": "e2e"}
    message, header = client.encrypt(
        source=plaintext, key_provider=provider, encryption_context=context
    )
    assert plaintext not in message
    assert [key.key_provider.key_info for key in header.encrypted_data_keys] == [key_arn.encode()]

    decrypted, decrypted_header = client.decrypt(source=message, key_provider=provider)
    assert decrypted == plaintext
    assert context.items() <= decrypted_header.encryption_context.items()

    # The encrypted data key is a ciphertext of our KMS: tampering it fails KMS Decrypt.
    parsed, _ = deserialize_header(io.BytesIO(message))
    (data_key,) = parsed.encrypted_data_keys
    at = message.index(data_key.encrypted_data_key) + len(data_key.encrypted_data_key) // 2
    tampered_key = message[:at] + bytes([message[at] ^ 0x01]) + message[at + 1 :]
    with pytest.raises(DecryptKeyError):
        client.decrypt(source=tampered_key, key_provider=provider)

    # Tampering the body fails its authentication.
    at = len(message) // 2
    tampered_body = message[:at] + bytes([message[at] ^ 0x01]) + message[at + 1 :]
    with pytest.raises((InvalidTag, AWSEncryptionSDKClientError)):
        client.decrypt(source=tampered_body, key_provider=provider)


def test_a_disabled_key_cannot_decrypt(botocore_session: Any, key_arn: str) -> None:
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    provider = StrictAwsKmsMasterKeyProvider(key_ids=[key_arn], botocore_session=botocore_session)
    message, _ = client.encrypt(source=b"short", key_provider=provider)
    kms = boto3.session.Session(botocore_session=botocore_session).client("kms")
    kms.disable_key(KeyId=key_arn)
    with pytest.raises(DecryptKeyError):
        client.decrypt(source=message, key_provider=provider)
    kms.enable_key(KeyId=key_arn)
    assert client.decrypt(source=message, key_provider=provider)[0] == b"short"
