"""kms_actors' own async HTTP client (``open_kms_http``) against the real server."""

from __future__ import annotations

import datetime

import pytest

import kms_actors
from kms_actors.client import open_kms_http
from tests.http.conftest import (
    ACCESS_KEY_ID,
    OTHER_ACCESS_KEY_ID,
    OTHER_SECRET_ACCESS_KEY,
    REGION,
    SECRET_ACCESS_KEY,
    TEMP_ACCESS_KEY_ID,
    TEMP_SECRET_ACCESS_KEY,
    TEMP_SESSION_TOKEN,
)


@pytest.mark.anyio
async def test_create_encrypt_decrypt_and_errors(endpoint: str) -> None:
    async with open_kms_http(
        endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    ) as kms:
        created = await kms.create_key(Description="async http client")
        meta = created["KeyMetadata"]
        assert meta["Description"] == "async http client"
        assert isinstance(meta["CreationDate"], datetime.datetime)
        assert meta["CreationDate"].tzinfo is not None
        assert created["ResponseMetadata"]["RequestId"]
        assert created["ResponseMetadata"]["HTTPStatusCode"] == 200

        context = {"client": "open_kms_http"}
        encrypted = await kms.encrypt(
            KeyId=meta["KeyId"], Plaintext=b"remote secret", EncryptionContext=context
        )
        assert isinstance(encrypted["CiphertextBlob"], bytes)
        assert encrypted["KeyId"] == meta["Arn"]
        decrypted = await kms.decrypt(
            CiphertextBlob=encrypted["CiphertextBlob"], EncryptionContext=context
        )
        assert decrypted["Plaintext"] == b"remote secret"
        data_key = await kms.generate_data_key(KeyId=meta["KeyId"], NumberOfBytes=24)
        assert len(data_key["Plaintext"]) == 24

        with pytest.raises(kms_actors.KmsError) as caught:
            await kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])
        assert caught.value.code == "InvalidCiphertextException"
        assert type(caught.value).__name__ == "InvalidCiphertextException"

        await kms.disable_key(KeyId=meta["KeyId"])
        with pytest.raises(kms_actors.KmsError) as caught:
            await kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")
        assert caught.value.code == "DisabledException"
        assert caught.value.message == f"{meta['Arn']} is disabled."
        assert caught.value.response["Error"]["Code"] == "DisabledException"

        with pytest.raises(kms_actors.KmsError) as caught:
            await kms.describe_key(KeyId="alias/not-there-async")
        assert caught.value.code == "NotFoundException"
        with pytest.raises(kms_actors.KmsError) as caught:
            await kms.generate_random(NumberOfBytes=5000)
        assert caught.value.code == "ValidationException"
        with pytest.raises(kms_actors.KmsError) as caught:
            await kms.get_public_key(KeyId=meta["KeyId"])
        assert caught.value.code == "UnsupportedOperationException"


@pytest.mark.anyio
async def test_credentials_are_checked(endpoint: str) -> None:
    async with open_kms_http(
        endpoint, region=REGION, access_key_id=ACCESS_KEY_ID, secret_access_key="wrong"
    ) as kms:
        with pytest.raises(kms_actors.KmsError) as caught:
            await kms.list_keys()
        assert caught.value.code == "InvalidSignatureException"
    async with open_kms_http(
        endpoint,
        region=REGION,
        access_key_id=TEMP_ACCESS_KEY_ID,
        secret_access_key=TEMP_SECRET_ACCESS_KEY,
        session_token=TEMP_SESSION_TOKEN,
    ) as kms:
        assert "Keys" in await kms.list_keys(Limit=1)


@pytest.mark.anyio
async def test_accounts_are_separate(endpoint: str) -> None:
    async with (
        open_kms_http(
            endpoint,
            region=REGION,
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
        ) as mine,
        open_kms_http(
            endpoint,
            region=REGION,
            access_key_id=OTHER_ACCESS_KEY_ID,
            secret_access_key=OTHER_SECRET_ACCESS_KEY,
        ) as theirs,
    ):
        key_id = (await mine.create_key())["KeyMetadata"]["KeyId"]
        with pytest.raises(kms_actors.KmsError) as caught:
            await theirs.describe_key(KeyId=key_id)
        assert caught.value.code == "NotFoundException"
