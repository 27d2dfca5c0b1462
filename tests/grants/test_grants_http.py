"""Grants over HTTP with boto3: the wire shapes of every grant operation, across accounts."""

from __future__ import annotations

import datetime
from typing import Any

from tests.http.conftest import (  # noqa: F401 - the HTTP suite's server fixtures
    ACCOUNT_ID,
    OTHER_ACCESS_KEY_ID,
    OTHER_SECRET_ACCESS_KEY,
    OTHER_USER_ARN,
    USER_ARN,
    ClientFactory,
    _aws_environment,
    boto_session,
    endpoint,
    error_of,
    kms,
    make_client,
    new_key,
    server,
    test_config,
)


def test_cross_account_grant_over_http(kms: Any, make_client: ClientFactory) -> None:  # noqa: F811
    key = new_key(kms)
    other = make_client(
        access_key_id=OTHER_ACCESS_KEY_ID, secret_access_key=OTHER_SECRET_ACCESS_KEY
    )
    denied = error_of(other.encrypt, KeyId=key["Arn"], Plaintext=b"x")
    assert denied["Error"]["Code"] == "AccessDeniedException"

    created = kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=OTHER_USER_ARN,
        RetiringPrincipal=USER_ARN,
        Operations=["Encrypt", "Decrypt"],
        Constraints={"EncryptionContextEquals": {"purpose": "test"}},
        Name="http-grant",
    )
    assert len(created["GrantId"]) == 64
    blob = other.encrypt(
        KeyId=key["Arn"],
        Plaintext=b"x",
        EncryptionContext={"purpose": "test"},
        GrantTokens=[created["GrantToken"]],
    )["CiphertextBlob"]
    assert (
        other.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "test"})["Plaintext"]
        == b"x"
    )

    grants = kms.list_grants(KeyId=key["KeyId"])
    assert grants["Truncated"] is False
    (entry,) = grants["Grants"]
    assert entry["KeyId"] == key["Arn"]
    assert entry["Name"] == "http-grant"
    assert entry["IssuingAccount"] == f"arn:aws:iam::{ACCOUNT_ID}:root"
    assert entry["Constraints"] == {"EncryptionContextEquals": {"purpose": "test"}}
    assert isinstance(entry["CreationDate"], datetime.datetime)
    retirable = kms.list_retirable_grants(RetiringPrincipal=USER_ARN)["Grants"]
    assert created["GrantId"] in {g["GrantId"] for g in retirable}

    kms.retire_grant(GrantToken=created["GrantToken"])
    denied = error_of(other.encrypt, KeyId=key["Arn"], Plaintext=b"x")
    assert denied["Error"]["Code"] == "AccessDeniedException"
    missing = error_of(kms.revoke_grant, KeyId=key["KeyId"], GrantId=created["GrantId"])
    assert missing["Error"]["Code"] == "NotFoundException"
