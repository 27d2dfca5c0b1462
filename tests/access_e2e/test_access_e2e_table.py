"""Access decision table: principal x action x key policy x encryption context x grant.

Every case runs through the embedded client (``kms_actors.open_kms``); the key-policy x
principal x action cases for the identities of the HTTP test config also run through the real
server with boto3. The expected answer comes from ``expected`` below, written from AWS's
documented evaluation rules (not from running this code):

* https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html
* https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
* https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
* https://docs.aws.amazon.com/kms/latest/developerguide/grants.html
"""

from __future__ import annotations

import itertools
import json
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError

import kms_actors
from tests.http.conftest import (
    ACCESS_KEY_ID,
    OTHER_ACCESS_KEY_ID,
    OTHER_SECRET_ACCESS_KEY,
    SECRET_ACCESS_KEY,
)

ACCOUNT = "111122223333"
OTHER = "444455556666"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"
ALICE_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB_ARN = f"arn:aws:iam::{ACCOUNT}:user/bob"
CAROL_ARN = f"arn:aws:iam::{OTHER}:user/carol"

ACTIONS = ("Encrypt", "Decrypt", "DescribeKey", "GenerateDataKey", "DisableKey")
EMBEDDED_PRINCIPALS = ("root", "alice_none", "alice_allow", "alice_deny", "bob", "other")
HTTP_PRINCIPALS = ("dev", "other")
POLICIES = ("default", "bob_cond", "cross", "deny_decrypt")
TENANTS = ("a", "b")
GRANTS = (False, True)
OK = "ok"
DENIED = "AccessDeniedException"
NOT_FOUND = "NotFoundException"
# Of ACTIONS, those the AWS API reference marks "Cross-account use: Yes".
CROSS_ACCOUNT_ACTIONS = ("Encrypt", "Decrypt", "DescribeKey", "GenerateDataKey")


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


_ROOT_ALL = {"Effect": "Allow", "Principal": {"AWS": ROOT_ARN}, "Action": "kms:*", "Resource": "*"}
KEY_POLICIES = {
    "default": _doc(_ROOT_ALL),
    "bob_cond": _doc(
        _ROOT_ALL,
        {
            "Effect": "Allow",
            "Principal": {"AWS": BOB_ARN},
            "Action": ["kms:Encrypt", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "a"}},
        },
    ),
    "cross": _doc(
        _ROOT_ALL,
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
            "Resource": "*",
        },
    ),
    "deny_decrypt": _doc(
        _ROOT_ALL,
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"},
    ),
}
IDENTITY_ALLOW_ENC_DEC = _doc(
    {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}
)
IDENTITY_DENY_DECRYPT = _doc(
    {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
    {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"},
)
IDENTITY_ADMIN = _doc({"Effect": "Allow", "Action": "*", "Resource": "*"})


def expected(principal: str, action: str, policy: str, tenant: str, grant: bool) -> bool:
    """AWS's answer for one case (True = allowed)."""
    # Rule 1: an explicit Deny in any applicable policy overrides every Allow. Here: the key
    # policy "deny_decrypt" (Principal "*", so the account root too) and alice_deny's IAM policy.
    if action == "Decrypt" and (policy == "deny_decrypt" or principal == "alice_deny"):
        return False
    # Rule 2: a key policy statement naming the principal allows it directly. Every key policy
    # here gives the account root kms:*; bob is named for Encrypt/Decrypt only when the
    # request's encryption context has tenant=a (kms:EncryptionContext:tenant StringEquals).
    if principal == "root":
        return True
    if principal == "bob" and policy == "bob_cond":
        return action in ("Encrypt", "Decrypt") and tenant == "a"
    # Rule 3: the root statement delegates to IAM in the key's account, so an identity policy
    # allowing the action is enough for users of that account (alice_*, bob, dev).
    identity = {
        "alice_allow": {"Encrypt", "Decrypt"},
        "alice_deny": set(ACTIONS),
        "dev": set(ACTIONS),
    }
    if action in identity.get(principal, set()):
        return True
    # Rule 4: cross-account needs both the key policy allowing the other account and the
    # user's own IAM policy (carol/other has an admin policy) allowing the action.
    if principal == "other":
        return policy == "cross" and action in ("Encrypt", "Decrypt", "DescribeKey")
    # Rule 5: a grant allows exactly its operations (Encrypt for alice) under its constraints
    # (EncryptionContextSubset tenant=a: the request's context must contain tenant=a).
    return grant and principal.startswith("alice") and action == "Encrypt" and tenant == "a"


@dataclass(frozen=True)
class Case:
    principal: str
    action: str
    policy: str
    tenant: str
    grant: bool

    @property
    def id(self) -> str:
        grant = "grant" if self.grant else "nogrant"
        return f"{self.principal}-{self.action}-{self.policy}-tenant_{self.tenant}-{grant}"

    @property
    def want(self) -> str:
        if expected(self.principal, self.action, self.policy, self.tenant, self.grant):
            return OK
        # DisableKey is "Cross-account use: No" in the AWS API reference: a key ARN of another
        # account is not looked up at all, so the caller's account has no such key.
        if self.principal == "other" and self.action not in CROSS_ACCOUNT_ACTIONS:
            return NOT_FOUND
        return DENIED


EMBEDDED_CASES = [
    Case(*values)
    for values in itertools.product(EMBEDDED_PRINCIPALS, ACTIONS, POLICIES, TENANTS, GRANTS)
]
HTTP_CASES = [
    Case(*values)
    for values in itertools.product(HTTP_PRINCIPALS, ACTIONS, POLICIES, TENANTS, [False])
]


def _params(case: Case, key_arn: str, ciphertexts: dict[str, bytes]) -> dict[str, Any]:
    context = {"tenant": case.tenant}
    if case.action == "Encrypt":
        return {"KeyId": key_arn, "Plaintext": b"secret", "EncryptionContext": context}
    if case.action == "Decrypt":
        return {
            "KeyId": key_arn,
            "CiphertextBlob": ciphertexts[case.tenant],
            "EncryptionContext": context,
        }
    if case.action == "GenerateDataKey":
        return {"KeyId": key_arn, "KeySpec": "AES_256", "EncryptionContext": context}
    return {"KeyId": key_arn}


_METHODS = {
    "Encrypt": "encrypt",
    "Decrypt": "decrypt",
    "DescribeKey": "describe_key",
    "GenerateDataKey": "generate_data_key",
    "DisableKey": "disable_key",
}


# ---------------------------------------------------------------------------------- embedded


async def _run_embedded(data_dir: pathlib.Path) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    async with kms_actors.open_kms(data_dir) as root:
        callers: dict[str, Any] = {
            "root": root,
            "alice_none": root.as_caller(arn=ALICE_ARN),
            "alice_allow": root.as_caller(
                arn=ALICE_ARN, identity_policies=[IDENTITY_ALLOW_ENC_DEC]
            ),
            "alice_deny": root.as_caller(arn=ALICE_ARN, identity_policies=[IDENTITY_DENY_DECRYPT]),
            "bob": root.as_caller(arn=BOB_ARN),
            "other": root.as_caller(
                account_id=OTHER, arn=CAROL_ARN, identity_policies=[IDENTITY_ADMIN]
            ),
        }
        keys: dict[tuple[str, bool], tuple[str, dict[str, bytes]]] = {}
        for policy, grant in itertools.product(POLICIES, GRANTS):
            created = await root.create_key(
                Policy=KEY_POLICIES[policy], BypassPolicyLockoutSafetyCheck=True
            )
            arn = created["KeyMetadata"]["Arn"]
            if grant:
                await root.create_grant(
                    KeyId=arn,
                    GranteePrincipal=ALICE_ARN,
                    Operations=["Encrypt"],
                    Constraints={"EncryptionContextSubset": {"tenant": "a"}},
                )
            ciphertexts = {}
            for tenant in TENANTS:
                sealed = await root.encrypt(
                    KeyId=arn, Plaintext=b"secret", EncryptionContext={"tenant": tenant}
                )
                ciphertexts[tenant] = sealed["CiphertextBlob"]
            keys[policy, grant] = (arn, ciphertexts)
        for case in EMBEDDED_CASES:
            arn, ciphertexts = keys[case.policy, case.grant]
            method = getattr(callers[case.principal], _METHODS[case.action])
            try:
                await method(**_params(case, arn, ciphertexts))
            except kms_actors.KmsError as error:
                outcomes[case.id] = error.code
            else:
                outcomes[case.id] = OK
                if case.action == "DisableKey":
                    await root.enable_key(KeyId=arn)
    return outcomes


@pytest.fixture(scope="module")
def embedded_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run every embedded case once (one service for the module) and return id -> outcome."""
    data_dir = tmp_path_factory.mktemp("access") / "data"
    return anyio.run(_run_embedded, data_dir, backend="asyncio")


def test_table_size() -> None:
    assert len(EMBEDDED_CASES) + len(HTTP_CASES) >= 150
    assert len({case.id for case in EMBEDDED_CASES}) == len(EMBEDDED_CASES)
    # Both outcomes occur for every principal (the table is not trivially all-allow/all-deny).
    for principal in EMBEDDED_PRINCIPALS:
        wants = {case.want for case in EMBEDDED_CASES if case.principal == principal}
        assert {OK, DENIED} <= wants, principal


@pytest.mark.parametrize("case", EMBEDDED_CASES, ids=lambda case: case.id)
def test_embedded(case: Case, embedded_outcomes: dict[str, str]) -> None:
    assert embedded_outcomes[case.id] == case.want


# -------------------------------------------------------------------------------------- HTTP


@pytest.fixture(scope="module")
def http_setup(boto_session: Any, endpoint: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Clients per principal and, per key policy, (key ARN, ciphertexts by tenant)."""

    def client(access_key_id: str, secret: str) -> Any:
        return boto_session.client(
            "kms",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret,
        )

    clients = {
        "dev": client(ACCESS_KEY_ID, SECRET_ACCESS_KEY),
        "other": client(OTHER_ACCESS_KEY_ID, OTHER_SECRET_ACCESS_KEY),
    }
    dev = clients["dev"]
    keys: dict[str, Any] = {}
    for policy in POLICIES:
        arn = dev.create_key(Policy=KEY_POLICIES[policy], BypassPolicyLockoutSafetyCheck=True)[
            "KeyMetadata"
        ]["Arn"]
        ciphertexts = {
            tenant: dev.encrypt(
                KeyId=arn, Plaintext=b"secret", EncryptionContext={"tenant": tenant}
            )["CiphertextBlob"]
            for tenant in TENANTS
        }
        keys[policy] = (arn, ciphertexts)
    return clients, keys


@pytest.mark.parametrize("case", HTTP_CASES, ids=lambda case: case.id)
def test_http(case: Case, http_setup: tuple[dict[str, Any], dict[str, Any]]) -> None:
    clients, keys = http_setup
    arn, ciphertexts = keys[case.policy]
    method: Callable[..., Any] = getattr(clients[case.principal], _METHODS[case.action])
    try:
        method(**_params(case, arn, ciphertexts))
    except ClientError as error:
        outcome = str(error.response["Error"]["Code"])
    else:
        outcome = OK
        if case.action == "DisableKey":
            clients["dev"].enable_key(KeyId=arn)
    assert outcome == case.want
