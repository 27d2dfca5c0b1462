"""A small AWS world for the policy tests: two accounts, their principals and a key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kms_actors.domain.policy import ConditionValue, Policy, RequestContext, compile_policy

ACCT = "111122223333"
OTHER = "444455556666"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

ROOT = f"arn:aws:iam::{ACCT}:root"
ALICE = f"arn:aws:iam::{ACCT}:user/alice"
BOB = f"arn:aws:iam::{ACCT}:user/dev/bob"  # an IAM path
APP_ROLE = f"arn:aws:iam::{ACCT}:role/service/AppRole"  # a role with a path
APP = f"arn:aws:sts::{ACCT}:assumed-role/AppRole/i-0abc"  # the session ARN has no path
OPS_ROLE = f"arn:aws:iam::{ACCT}:role/Ops"
OPS = f"arn:aws:sts::{ACCT}:assumed-role/Ops/jane"
CAROL = f"arn:aws:iam::{OTHER}:user/carol"
DAVE = f"arn:aws:iam::{OTHER}:user/dave"
OTHER_ROOT = f"arn:aws:iam::{OTHER}:root"

ACCOUNT_OF = {
    ROOT: ACCT,
    ALICE: ACCT,
    BOB: ACCT,
    APP: ACCT,
    OPS: ACCT,
    CAROL: OTHER,
    DAVE: OTHER,
    OTHER_ROOT: OTHER,
}


def document(*statements: Mapping[str, Any], version: str | None = "2012-10-17") -> str:
    """Return a policy document's text."""
    body: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        body = {"Version": version, **body}
    return json.dumps(body, ensure_ascii=False)


def key_policy(*statements: Mapping[str, Any]) -> Policy:
    return compile_policy(document(*statements), kind="key")


def identity_policy(*statements: Mapping[str, Any]) -> Policy:
    return compile_policy(document(*statements), kind="identity")


def ctx(
    principal: str,
    action: str = "kms:Encrypt",
    keys: Mapping[str, ConditionValue] | None = None,
    *,
    resource: str = KEY,
    role_arn: str = "",
    request_time: float | None = None,
) -> RequestContext:
    """Return a request context for one of the world's principals."""
    return RequestContext(
        principal_arn=principal,
        principal_account=ACCOUNT_OF.get(principal, ""),
        action=action,
        resource=resource,
        keys=dict(keys or {}),
        role_arn=role_arn,
        request_time=request_time,
    )


# Identity policies.
ADMIN = identity_policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
KMS_USE = identity_policy(
    {
        "Effect": "Allow",
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": f"arn:aws:kms:*:{ACCT}:key/*",
    }
)
DENY_DECRYPT = identity_policy({"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"})
CROSS_USE = identity_policy(
    {
        "Effect": "Allow",
        "Action": ["kms:Encrypt", "kms:Decrypt"],
        "Resource": f"arn:aws:kms:us-east-1:{ACCT}:key/*",
    }
)

IDENTITIES: dict[str, tuple[Policy, ...]] = {
    ROOT: (),
    ALICE: (ADMIN,),
    BOB: (),
    APP: (KMS_USE,),
    OPS: (ADMIN, DENY_DECRYPT),
    CAROL: (CROSS_USE,),
    DAVE: (),
    OTHER_ROOT: (),
}
