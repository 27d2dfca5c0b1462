"""aiobotocore (the async botocore) against the real server."""

from __future__ import annotations

from typing import Any

import pytest
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from botocore.exceptions import ClientError

from tests.http.conftest import ACCESS_KEY_ID, NO_RETRIES, REGION, SECRET_ACCESS_KEY


@pytest.mark.anyio
async def test_create_encrypt_decrypt_round_trip(endpoint: str) -> None:
    session: Any = get_session()
    async with session.create_client(
        "kms",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=NO_RETRIES,
    ) as kms:
        key = (await kms.create_key(Description="aiobotocore"))["KeyMetadata"]
        context = {"client": "aiobotocore"}
        encrypted = await kms.encrypt(
            KeyId=key["KeyId"], Plaintext=b"async secret", EncryptionContext=context
        )
        assert encrypted["KeyId"] == key["Arn"]
        decrypted = await kms.decrypt(
            CiphertextBlob=encrypted["CiphertextBlob"], EncryptionContext=context
        )
        assert decrypted["Plaintext"] == b"async secret"
        assert decrypted["ResponseMetadata"]["RequestId"]

        data_key = await kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
        unwrapped = await kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])
        assert unwrapped["Plaintext"] == data_key["Plaintext"]

        second = (await kms.create_key())["KeyMetadata"]
        paginator = kms.get_paginator("list_keys")
        pages = [page async for page in paginator.paginate(PaginationConfig={"PageSize": 1})]
        assert len(pages) >= 2 and all(len(page["Keys"]) == 1 for page in pages)
        listed = {entry["KeyId"] for page in pages for entry in page["Keys"]}
        assert {key["KeyId"], second["KeyId"]} <= listed

        with pytest.raises(ClientError) as caught:
            await kms.describe_key(KeyId="alias/not-there-aiobotocore")
        assert caught.value.response["Error"]["Code"] == "NotFoundException"
        await kms.disable_key(KeyId=key["KeyId"])
        with pytest.raises(ClientError) as caught:
            await kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
        assert caught.value.response["Error"]["Code"] == "DisabledException"
