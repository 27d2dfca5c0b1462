"""boto3's KMS client against the real server: every implemented operation, paging, errors."""

from __future__ import annotations

import datetime
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.http.conftest import (
    ACCESS_KEY_ID,
    ACCOUNT_ID,
    NO_RETRIES,
    REGION,
    SECRET_ACCESS_KEY,
    ClientFactory,
    error_of,
    new_key,
)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _aware(value: object) -> datetime.datetime:
    assert isinstance(value, datetime.datetime), value
    assert value.tzinfo is not None and value.utcoffset() is not None
    return value


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _request_id(response: dict[str, Any]) -> str:
    """Return the request id, checking that the header and ResponseMetadata agree."""
    metadata = response["ResponseMetadata"]
    request_id = metadata["RequestId"]
    assert request_id
    assert metadata["HTTPHeaders"]["x-amzn-requestid"] == request_id
    return str(request_id)


def test_create_and_describe_key(kms: Any) -> None:
    before = _now() - datetime.timedelta(seconds=5)
    created = kms.create_key(
        Description="boto3 key", Tags=[{"TagKey": "team", "TagValue": "crypto"}]
    )
    meta = created["KeyMetadata"]
    assert UUID.fullmatch(meta["KeyId"])
    assert meta["Arn"] == f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{meta['KeyId']}"
    assert meta["AWSAccountId"] == ACCOUNT_ID
    assert meta["Description"] == "boto3 key"
    assert (meta["KeyState"], meta["Enabled"]) == ("Enabled", True)
    assert (meta["KeyUsage"], meta["KeySpec"]) == ("ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT")
    assert (meta["KeyManager"], meta["Origin"]) == ("CUSTOMER", "AWS_KMS")
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert before <= _aware(meta["CreationDate"]) <= _now() + datetime.timedelta(seconds=5)
    _request_id(created)

    for key_id in (meta["KeyId"], meta["Arn"]):
        described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        assert described == meta
    alias = f"alias/describe-{meta['KeyId']}"
    kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    for key_id in (alias, f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{alias}"):
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == meta["KeyId"]


def test_update_key_description(kms: Any) -> None:
    key_id = new_key(kms, Description="before")["KeyId"]
    response = kms.update_key_description(KeyId=key_id, Description="after")
    assert set(response) == {"ResponseMetadata"}
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "after"


def test_disable_enable_schedule_and_cancel_deletion(kms: Any) -> None:
    key_id = new_key(kms)["KeyId"]
    kms.disable_key(KeyId=key_id)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Disabled", False)
    kms.enable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"

    scheduled = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert scheduled["KeyId"].endswith(f":key/{key_id}")
    assert scheduled["KeyState"] == "PendingDeletion"
    assert scheduled["PendingWindowInDays"] == 7
    due = _aware(scheduled["DeletionDate"]) - _now()
    assert datetime.timedelta(days=6, hours=23) < due <= datetime.timedelta(days=7, minutes=1)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"
    assert _aware(meta["DeletionDate"]) == scheduled["DeletionDate"]

    cancelled = kms.cancel_key_deletion(KeyId=key_id)
    assert cancelled["KeyId"] == meta["Arn"]
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "Disabled"  # as AWS: a cancelled deletion leaves the key disabled
    assert "DeletionDate" not in meta


def test_schedule_key_deletion_defaults_to_30_days(kms: Any) -> None:
    key_id = new_key(kms)["KeyId"]
    scheduled = kms.schedule_key_deletion(KeyId=key_id)
    assert scheduled["PendingWindowInDays"] == 30
    kms.cancel_key_deletion(KeyId=key_id)


def test_encrypt_decrypt_and_re_encrypt(kms: Any) -> None:
    first, second = new_key(kms), new_key(kms)
    context = {"tenant": "a", "purpose": "test"}
    encrypted = kms.encrypt(
        KeyId=first["KeyId"], Plaintext=b"top secret", EncryptionContext=context
    )
    assert encrypted["KeyId"] == first["Arn"]
    assert encrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = encrypted["CiphertextBlob"]
    assert isinstance(blob, bytes) and b"top secret" not in blob
    _request_id(encrypted)

    decrypted = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert decrypted["Plaintext"] == b"top secret"
    assert decrypted["KeyId"] == first["Arn"]
    assert decrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    named = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context, KeyId=first["Arn"])
    assert named["Plaintext"] == b"top secret"

    moved = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext=context,
        DestinationKeyId=second["KeyId"],
        DestinationEncryptionContext={"tenant": "b"},
    )
    assert moved["SourceKeyId"] == first["Arn"]
    assert moved["KeyId"] == second["Arn"]
    assert moved["CiphertextBlob"] != blob
    again = kms.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"tenant": "b"})
    assert (again["Plaintext"], again["KeyId"]) == (b"top secret", second["Arn"])


def test_largest_plaintext_round_trips(kms: Any) -> None:
    key_id = new_key(kms)["KeyId"]
    plaintext = bytes(range(256)) * 16  # 4096 bytes, the maximum
    blob = kms.encrypt(KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext


def test_generate_data_keys(kms: Any) -> None:
    key = new_key(kms)
    data_key = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    assert len(data_key["Plaintext"]) == 32
    assert data_key["KeyId"] == key["Arn"]
    unwrapped = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])
    assert unwrapped["Plaintext"] == data_key["Plaintext"]

    sized = kms.generate_data_key(
        KeyId=key["Arn"], NumberOfBytes=64, EncryptionContext={"file": "x"}
    )
    assert len(sized["Plaintext"]) == 64
    assert (
        kms.decrypt(CiphertextBlob=sized["CiphertextBlob"], EncryptionContext={"file": "x"})[
            "Plaintext"
        ]
        == sized["Plaintext"]
    )

    bare = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_128")
    assert "Plaintext" not in bare
    assert bare["KeyId"] == key["Arn"]
    assert len(kms.decrypt(CiphertextBlob=bare["CiphertextBlob"])["Plaintext"]) == 16


def test_concurrent_clients_on_one_key(kms: Any, make_client: ClientFactory) -> None:
    key_id = new_key(kms)["KeyId"]
    clients = [make_client() for _ in range(8)]
    failures: list[BaseException] = []

    def work(client: Any, worker: int) -> None:
        try:
            for n in range(20):
                plaintext = f"{worker}:{n}".encode()
                context = {"worker": str(worker)}
                blob = client.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)
                decrypted = client.decrypt(
                    CiphertextBlob=blob["CiphertextBlob"], EncryptionContext=context
                )
                assert decrypted["Plaintext"] == plaintext
        except BaseException as error:  # collected for the main thread
            failures.append(error)

    threads = [
        threading.Thread(target=work, args=(client, worker))
        for worker, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures[:3]


def test_generate_random(kms: Any) -> None:
    first = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    second = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    assert len(first) == len(second) == 32 and first != second
    assert len(kms.generate_random(NumberOfBytes=1024)["Plaintext"]) == 1024


def test_alias_operations(kms: Any) -> None:
    first, second = new_key(kms), new_key(kms)
    name = f"alias/ops-{uuid.uuid4()}"
    kms.create_alias(AliasName=name, TargetKeyId=first["KeyId"])
    listed = kms.list_aliases(KeyId=first["KeyId"])["Aliases"]
    assert [alias["AliasName"] for alias in listed] == [name]
    alias = listed[0]
    assert alias["AliasArn"] == f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{name}"
    assert alias["TargetKeyId"] == first["KeyId"]
    _aware(alias["CreationDate"])
    assert kms.encrypt(KeyId=name, Plaintext=b"x")["KeyId"] == first["Arn"]

    kms.update_alias(AliasName=name, TargetKeyId=second["KeyId"])
    assert kms.list_aliases(KeyId=first["KeyId"])["Aliases"] == []
    moved = kms.list_aliases(KeyId=second["KeyId"])["Aliases"]
    assert [(a["AliasName"], a["TargetKeyId"]) for a in moved] == [(name, second["KeyId"])]
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == second["KeyId"]

    kms.delete_alias(AliasName=name)
    assert kms.list_aliases(KeyId=second["KeyId"])["Aliases"] == []
    assert error_of(kms.describe_key, KeyId=name)["Error"]["Code"] == "NotFoundException"


def test_tag_operations(kms: Any) -> None:
    key_id = new_key(kms, Tags=[{"TagKey": "a", "TagValue": "1"}])["KeyId"]
    kms.tag_resource(
        KeyId=key_id,
        Tags=[{"TagKey": "b", "TagValue": "2"}, {"TagKey": "a", "TagValue": "changed"}],
    )
    tags = kms.list_resource_tags(KeyId=key_id)
    assert sorted((t["TagKey"], t["TagValue"]) for t in tags["Tags"]) == [
        ("a", "changed"),
        ("b", "2"),
    ]
    assert tags["Truncated"] is False
    kms.untag_resource(KeyId=key_id, TagKeys=["a", "not-there"])
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "b", "TagValue": "2"}]


def test_list_keys_sees_new_keys(kms: Any) -> None:
    key = new_key(kms)
    keys = [entry for page in kms.get_paginator("list_keys").paginate() for entry in page["Keys"]]
    assert {"KeyId": key["KeyId"], "KeyArn": key["Arn"]} in keys


# --- Paging with boto3's paginators, in a Region of their own (an exact, empty namespace) ------

PAGING_REGION = "us-west-2"


@pytest.fixture
def paging_kms(make_client: ClientFactory) -> Any:
    return make_client(region=PAGING_REGION)


def test_paginators(paging_kms: Any) -> None:
    kms = paging_kms
    assert kms.can_paginate("list_keys") and kms.can_paginate("list_aliases")
    created = [new_key(kms, Description=f"page {i}") for i in range(5)]
    for index, key in enumerate(created):
        kms.create_alias(AliasName=f"alias/page-{index}", TargetKeyId=key["KeyId"])

    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(page["Keys"]) for page in pages] == [2, 2, 1]
    assert [page["Truncated"] for page in pages] == [True, True, False]
    listed = [entry["KeyId"] for page in pages for entry in page["Keys"]]
    assert sorted(listed) == sorted(key["KeyId"] for key in created)

    pages = list(kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 2}))
    assert len(pages) >= 3
    names = [alias["AliasName"] for page in pages for alias in page["Aliases"]]
    assert sorted(names) == [f"alias/page-{i}" for i in range(5)]

    limited = kms.get_paginator("list_keys").paginate(
        PaginationConfig={"PageSize": 2, "MaxItems": 3}
    )
    result = limited.build_full_result()
    assert len(result["Keys"]) == 3 and "NextToken" in result


def test_list_resource_tags_pages(paging_kms: Any) -> None:
    kms = paging_kms
    tags = [{"TagKey": f"k{i}", "TagValue": f"v{i}"} for i in range(5)]
    key_id = new_key(kms, Tags=tags)["KeyId"]
    assert kms.can_paginate("list_resource_tags")
    paginator = kms.get_paginator("list_resource_tags")
    pages = list(paginator.paginate(KeyId=key_id, PaginationConfig={"PageSize": 2}))
    assert [len(page["Tags"]) for page in pages] == [2, 2, 1]
    assert [page["Truncated"] for page in pages] == [True, True, False]
    collected = [tag for page in pages for tag in page["Tags"]]
    assert sorted(collected, key=lambda tag: tag["TagKey"]) == tags


# --- Errors: codes, statuses, request ids -------------------------------------------------------


class Keys:
    """Keys in each state the error table needs (made once per module)."""

    def __init__(self, kms: Any) -> None:
        self.enabled = new_key(kms)
        self.other = new_key(kms)
        self.disabled = new_key(kms)
        kms.disable_key(KeyId=self.disabled["KeyId"])
        self.pending = new_key(kms)
        kms.schedule_key_deletion(KeyId=self.pending["KeyId"], PendingWindowInDays=7)
        self.alias = f"alias/errors-{uuid.uuid4()}"
        kms.create_alias(AliasName=self.alias, TargetKeyId=self.enabled["KeyId"])
        self.context = {"k": "v"}
        self.blob = kms.encrypt(
            KeyId=self.enabled["KeyId"], Plaintext=b"data", EncryptionContext=self.context
        )["CiphertextBlob"]


@pytest.fixture(scope="module")
def keys(boto_session: Any, endpoint: str) -> Keys:
    kms = boto_session.client(
        "kms",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=NO_RETRIES,
    )
    return Keys(kms)


Case = Callable[[Any, Keys], dict[str, Any]]

ERROR_CASES: dict[str, tuple[Case, str]] = {
    "describe-missing-alias": (
        lambda kms, k: error_of(kms.describe_key, KeyId="alias/does-not-exist"),
        "NotFoundException",
    ),
    "describe-missing-key": (
        lambda kms, k: error_of(kms.describe_key, KeyId=str(uuid.uuid4())),
        "NotFoundException",
    ),
    "encrypt-missing-key-arn": (
        lambda kms, k: error_of(
            kms.encrypt,
            KeyId=f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{uuid.uuid4()}",
            Plaintext=b"x",
        ),
        "NotFoundException",
    ),
    "encrypt-disabled": (
        lambda kms, k: error_of(kms.encrypt, KeyId=k.disabled["KeyId"], Plaintext=b"x"),
        "DisabledException",
    ),
    "generate-data-key-disabled": (
        lambda kms, k: error_of(
            kms.generate_data_key, KeyId=k.disabled["KeyId"], KeySpec="AES_256"
        ),
        "DisabledException",
    ),
    "encrypt-pending-deletion": (
        lambda kms, k: error_of(kms.encrypt, KeyId=k.pending["KeyId"], Plaintext=b"x"),
        "KMSInvalidStateException",
    ),
    "enable-pending-deletion": (
        lambda kms, k: error_of(kms.enable_key, KeyId=k.pending["KeyId"]),
        "KMSInvalidStateException",
    ),
    "create-existing-alias": (
        lambda kms, k: error_of(kms.create_alias, AliasName=k.alias, TargetKeyId=k.other["KeyId"]),
        "AlreadyExistsException",
    ),
    "delete-missing-alias": (
        lambda kms, k: error_of(kms.delete_alias, AliasName="alias/never-created"),
        "NotFoundException",
    ),
    "pending-window-400": (
        lambda kms, k: error_of(
            kms.schedule_key_deletion, KeyId=k.enabled["KeyId"], PendingWindowInDays=400
        ),
        "ValidationException",
    ),
    "description-too-long": (
        lambda kms, k: error_of(
            kms.update_key_description, KeyId=k.enabled["KeyId"], Description="d" * 8193
        ),
        "ValidationException",
    ),
    "plaintext-too-long": (
        lambda kms, k: error_of(kms.encrypt, KeyId=k.enabled["KeyId"], Plaintext=b"p" * 4097),
        "ValidationException",
    ),
    "random-too-many-bytes": (
        lambda kms, k: error_of(kms.generate_random, NumberOfBytes=1025),
        "ValidationException",
    ),
    "data-key-too-many-bytes": (
        lambda kms, k: error_of(
            kms.generate_data_key, KeyId=k.enabled["KeyId"], NumberOfBytes=1025
        ),
        "ValidationException",
    ),
    "decrypt-garbage": (
        lambda kms, k: error_of(kms.decrypt, CiphertextBlob=b"\x01" + b"\x00" * 80),
        "InvalidCiphertextException",
    ),
    "decrypt-wrong-context": (
        lambda kms, k: error_of(
            kms.decrypt, CiphertextBlob=k.blob, EncryptionContext={"k": "other"}
        ),
        "InvalidCiphertextException",
    ),
    "decrypt-missing-context": (
        lambda kms, k: error_of(kms.decrypt, CiphertextBlob=k.blob),
        "InvalidCiphertextException",
    ),
    "decrypt-tampered": (
        lambda kms, k: error_of(
            kms.decrypt,
            CiphertextBlob=k.blob[:-1] + bytes([k.blob[-1] ^ 1]),
            EncryptionContext=k.context,
        ),
        "InvalidCiphertextException",
    ),
    "decrypt-wrong-key-id": (
        lambda kms, k: error_of(
            kms.decrypt,
            CiphertextBlob=k.blob,
            EncryptionContext=k.context,
            KeyId=k.other["KeyId"],
        ),
        "IncorrectKeyException",
    ),
    "list-keys-bad-marker": (
        lambda kms, k: error_of(kms.list_keys, Marker="not-a-marker"),
        "InvalidMarkerException",
    ),
    "encrypt-dry-run": (
        lambda kms, k: error_of(kms.encrypt, KeyId=k.enabled["KeyId"], Plaintext=b"x", DryRun=True),
        "DryRunOperationException",
    ),
    "encrypt-asymmetric-algorithm": (
        lambda kms, k: error_of(
            kms.encrypt,
            KeyId=k.enabled["KeyId"],
            Plaintext=b"x",
            EncryptionAlgorithm="RSAES_OAEP_SHA_256",
        ),
        "InvalidKeyUsageException",
    ),
    "tag-reserved-prefix": (
        lambda kms, k: error_of(
            kms.tag_resource,
            KeyId=k.enabled["KeyId"],
            Tags=[{"TagKey": "aws:reserved", "TagValue": "v"}],
        ),
        "TagException",
    ),
    "sign": (
        lambda kms, k: error_of(
            kms.sign,
            KeyId=k.enabled["KeyId"],
            Message=b"m",
            SigningAlgorithm="RSASSA_PSS_SHA_256",
        ),
        "UnsupportedOperationException",
    ),
    "get-public-key": (
        lambda kms, k: error_of(kms.get_public_key, KeyId=k.enabled["KeyId"]),
        "UnsupportedOperationException",
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_error_codes(case: str, kms: Any, keys: Keys) -> None:
    call, code = ERROR_CASES[case]
    response = call(kms, keys)
    assert response["Error"]["Code"] == code, response["Error"]
    assert response["Error"]["Message"]
    assert "Traceback" not in response["Error"]["Message"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert UUID.fullmatch(_request_id(response))


def test_error_messages_read_as_aws(kms: Any, keys: Keys) -> None:
    disabled = error_of(kms.encrypt, KeyId=keys.disabled["KeyId"], Plaintext=b"x")
    assert disabled["Error"]["Message"] == f"{keys.disabled['Arn']} is disabled."
    pending = error_of(kms.encrypt, KeyId=keys.pending["KeyId"], Plaintext=b"x")
    assert pending["Error"]["Message"] == f"{keys.pending['Arn']} is pending deletion."
    missing = error_of(kms.describe_key, KeyId="alias/does-not-exist")
    assert missing["Error"]["Message"] == (
        f"Alias arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/does-not-exist is not found."
    )
    window = error_of(
        kms.schedule_key_deletion, KeyId=keys.enabled["KeyId"], PendingWindowInDays=400
    )
    assert window["Error"]["Message"].startswith("1 validation error detected: Value '400' at ")


def test_every_response_has_a_fresh_request_id(kms: Any, keys: Keys) -> None:
    seen = {
        _request_id(kms.generate_random(NumberOfBytes=8)),
        _request_id(kms.describe_key(KeyId=keys.enabled["KeyId"])),
        _request_id(error_of(kms.describe_key, KeyId="alias/does-not-exist")),
        _request_id(error_of(kms.encrypt, KeyId=keys.disabled["KeyId"], Plaintext=b"x")),
    }
    assert len(seen) == 4
    assert all(UUID.fullmatch(request_id) for request_id in seen)
