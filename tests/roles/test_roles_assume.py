"""sts:AssumeRole through boto3 against the real server: sessions, trust, and their use."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.roles.conftest import (
    ACCOUNT_ID,
    APP_ROLE,
    CROSS_ROLE,
    DEV_ARN,
    OTHER_ACCOUNT_ID,
    READER_ROLE,
    UNKNOWN_ROLE,
    USERS,
    Client,
)


def _error(call: Any, /, *args: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(*args, **params)
    error: dict[str, Any] = caught.value.response
    return error


def _assume(client: Client, user: str, role: str, session: str = "s1", **more: Any) -> Any:
    return client("sts", user).assume_role(RoleArn=role, RoleSessionName=session, **more)


def test_assume_role_returns_aws_shaped_credentials(client: Client) -> None:
    before = dt.datetime.now(dt.UTC)
    answer = _assume(client, "alice", APP_ROLE, "build-42")
    credentials, user = answer["Credentials"], answer["AssumedRoleUser"]
    assert credentials["AccessKeyId"].startswith("ASIA") and len(credentials["AccessKeyId"]) == 20
    assert len(credentials["SecretAccessKey"]) == 40
    assert len(credentials["SessionToken"]) >= 100
    # The default duration is one hour.
    lifetime = credentials["Expiration"] - before
    assert dt.timedelta(minutes=59) < lifetime <= dt.timedelta(hours=1, seconds=1)
    assert user["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/app/build-42"
    role_id, _, session = user["AssumedRoleId"].partition(":")
    assert role_id.startswith("AROA") and len(role_id) == 21 and session == "build-42"
    # Every session of a role has the role's id.
    again = _assume(client, "dev", APP_ROLE, "other")["AssumedRoleUser"]
    assert again["AssumedRoleId"] == f"{role_id}:other"
    assert again["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/app/other"
    assert (
        answer["Credentials"]["AccessKeyId"]
        != _assume(client, "alice", APP_ROLE)["Credentials"]["AccessKeyId"]
    )


def test_get_caller_identity_of_a_session(client: Client) -> None:
    answer = _assume(client, "alice", APP_ROLE, "who-am-i")
    me = client("sts", answer["Credentials"]).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/app/who-am-i"
    assert me["UserId"] == answer["AssumedRoleUser"]["AssumedRoleId"]
    assert me["Account"] == ACCOUNT_ID


def test_a_session_needs_its_token(client: Client) -> None:
    credentials = dict(_assume(client, "alice", APP_ROLE)["Credentials"])
    credentials["SessionToken"] = credentials["SessionToken"][:-4] + "AAAA"
    error = _error(client("sts", credentials).get_caller_identity)
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "InvalidClientTokenId",
        403,
    )


def test_role_with_a_path_and_its_own_duration_limit(client: Client) -> None:
    answer = _assume(client, "bob", READER_ROLE, "reading", DurationSeconds=7200)
    # The session ARN names the role without its path.
    assert answer["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/reader/reading"
    )
    lifetime = answer["Credentials"]["Expiration"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=1, minutes=59) < lifetime <= dt.timedelta(hours=2)
    error = _error(
        client("sts", "bob").assume_role,
        RoleArn=READER_ROLE,
        RoleSessionName="long",
        DurationSeconds=7201,
    )
    assert error["Error"] == {
        "Type": "Sender",
        "Code": "ValidationError",
        "Message": "The requested DurationSeconds exceeds the MaxSessionDuration set for this "
        "role.",
    }


def test_role_chaining_is_limited_to_one_hour(client: Client) -> None:
    app = _assume(client, "alice", APP_ROLE, "chain")["Credentials"]
    sts = client("sts", app)
    # team/reader trusts app's role ARN, so app's sessions may assume it.
    chained = sts.assume_role(RoleArn=READER_ROLE, RoleSessionName="hop", DurationSeconds=3600)
    assert chained["AssumedRoleUser"]["Arn"].endswith(":assumed-role/reader/hop")
    error = _error(
        sts.assume_role, RoleArn=READER_ROLE, RoleSessionName="hop", DurationSeconds=3601
    )
    assert error["Error"]["Code"] == "ValidationError"
    assert "1 hour session limit for roles assumed by role chaining" in error["Error"]["Message"]


@pytest.mark.parametrize(
    ("user", "role", "why"),
    [
        ("nobody", APP_ROLE, "trust names the account, and no identity policy allows"),
        ("alice", READER_ROLE, "trust names the account; alice's policy only lists keys"),
        ("bob", APP_ROLE, "bob's identity policy allows team/reader only"),
        ("mallory", APP_ROLE, "an explicit Deny in the trust policy wins"),
        ("alice", UNKNOWN_ROLE, "no such role: AWS answers AccessDenied too"),
        ("dave", CROSS_ROLE, "cross-account needs the caller's identity policy too"),
        ("carol", APP_ROLE, "app does not trust the other account"),
    ],
)
def test_access_denied(client: Client, user: str, role: str, why: str) -> None:
    error = _error(_assume, client, user, role)
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403, why
    assert error["Error"] == {
        "Type": "Sender",
        "Code": "AccessDenied",
        "Message": f"User: {USERS[user][3]} is not authorized to perform: sts:AssumeRole "
        f"on resource: {role}",
    }, why
    assert error["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize(
    ("user", "role"),
    [
        ("alice", APP_ROLE),  # named by the trust policy: no identity policy needed
        ("dev", APP_ROLE),  # trust names the account; dev's administrator policy allows
        ("bob", READER_ROLE),  # trust names the account; bob's policy names this role
        ("mallory", READER_ROLE),  # the Deny is in app's trust policy only
        ("carol", CROSS_ROLE),  # other account: its trust and carol's policy both allow
    ],
)
def test_allowed(client: Client, user: str, role: str) -> None:
    arn = _assume(client, user, role)["AssumedRoleUser"]["Arn"]
    assert arn == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role.rsplit('/', 1)[1]}/s1"


def test_roles_may_not_be_assumed_by_the_root(client: Client) -> None:
    error = _error(_assume, client, "root", APP_ROLE)
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "AccessDenied"
    assert error["Error"]["Message"] == "Roles may not be assumed by root accounts."


def test_key_policy_naming_the_role_applies_to_its_sessions(client: Client) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AppEncryptsOnly",
                "Effect": "Allow",
                "Principal": {"AWS": APP_ROLE},
                "Action": "kms:Encrypt",
                "Resource": "*",
            }
        ],
    }
    admin = client("kms")
    key = admin.create_key(Policy=json.dumps(policy), BypassPolicyLockoutSafetyCheck=True)
    key_id, key_arn = key["KeyMetadata"]["KeyId"], key["KeyMetadata"]["Arn"]
    session = _assume(client, "alice", APP_ROLE, "encryptor")
    kms = client("kms", session["Credentials"])
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    error = _error(kms.decrypt, CiphertextBlob=blob)
    assert error["Error"]["Code"] == "AccessDeniedException"
    session_arn = session["AssumedRoleUser"]["Arn"]
    assert error["Error"]["Message"].startswith(
        f"User: {session_arn} is not authorized to perform: kms:Decrypt on resource: {key_arn}"
    )
    # The key policy names the role, not the account: the administrator is locked out too.
    assert _error(admin.decrypt, CiphertextBlob=blob)["Error"]["Code"] == "AccessDeniedException"
    # The session is the role's, not alice's: alice herself may not encrypt.
    alice = client("kms", "alice")
    denied = _error(alice.encrypt, KeyId=key_id, Plaintext=b"x")["Error"]
    assert denied["Code"] == "AccessDeniedException"
    assert USERS["alice"][3] in denied["Message"]


def test_role_identity_policies_apply_to_its_sessions(client: Client) -> None:
    # A key with the default key policy (the account delegates to IAM policies).
    key_id = client("kms").create_key()["KeyMetadata"]["KeyId"]
    reader = client("kms", _assume(client, "bob", READER_ROLE, "rd")["Credentials"])
    assert reader.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    error = _error(reader.encrypt, KeyId=key_id, Plaintext=b"x")
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert (
        "because no identity-based policy allows the kms:Encrypt action"
        in (error["Error"]["Message"])
    )
    # app has no identity policy: its sessions get nothing from the default key policy.
    app = client("kms", _assume(client, "alice", APP_ROLE)["Credentials"])
    assert _error(app.describe_key, KeyId=key_id)["Error"]["Code"] == "AccessDeniedException"


def test_cross_account_session_belongs_to_the_role_account(client: Client) -> None:
    answer = _assume(client, "carol", CROSS_ROLE, "visitor")
    me = client("sts", answer["Credentials"]).get_caller_identity()
    assert me["Account"] == ACCOUNT_ID != OTHER_ACCOUNT_ID
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/cross/visitor"
    # The role's identity policy lets it list the keys of its own account.
    client("kms", answer["Credentials"]).list_keys()


def test_session_name_is_kept_as_given(client: Client) -> None:
    answer = _assume(client, "dev", APP_ROLE, "Dev.Session@example.com")
    assert answer["AssumedRoleUser"]["Arn"].endswith("/app/Dev.Session@example.com")
    assert client("sts", answer["Credentials"]).get_caller_identity()["Arn"] != DEV_ARN
