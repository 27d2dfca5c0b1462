"""The policy lockout safety check, AWS's AccessDenied wording, and hot-path sanity."""

from __future__ import annotations

import json

import pytest

from kms_actors.domain.policy import (
    LOCKOUT_MESSAGE,
    Decision,
    access_denied_message,
    compile_policy,
    decide,
    default_key_policy,
    lockout_check,
)
from kms_actors.errors import MalformedPolicyDocumentException
from tests.policy._world import (
    ACCT,
    ADMIN,
    ALICE,
    APP,
    APP_ROLE,
    BOB,
    KEY,
    KMS_USE,
    ROOT,
    ctx,
    identity_policy,
    key_policy,
)


def test_the_default_policy_passes_for_the_root() -> None:
    lockout_check(compile_policy(default_key_policy(ACCT)), ctx(ROOT, "kms:PutKeyPolicy"), ())


def test_the_default_policy_passes_for_an_administrator() -> None:
    lockout_check(compile_policy(default_key_policy(ACCT)), ctx(ALICE, "kms:CreateKey"), [ADMIN])


def test_the_default_policy_fails_for_a_caller_iam_does_not_allow() -> None:
    # The key policy trusts the account, but no identity policy lets the caller PutKeyPolicy.
    policy = compile_policy(default_key_policy(ACCT))
    with pytest.raises(MalformedPolicyDocumentException) as raised:
        lockout_check(policy, ctx(APP, "kms:PutKeyPolicy"), [KMS_USE])
    assert raised.value.message == LOCKOUT_MESSAGE
    assert LOCKOUT_MESSAGE == (
        "The new key policy will not allow you to update the key policy in the future."
    )


def test_a_policy_naming_only_someone_else_locks_the_caller_out() -> None:
    policy = key_policy(
        {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:*", "Resource": "*"}
    )
    with pytest.raises(MalformedPolicyDocumentException):
        lockout_check(policy, ctx(ALICE, "kms:PutKeyPolicy"), [ADMIN])
    lockout_check(policy, ctx(BOB, "kms:PutKeyPolicy"), ())


def test_an_explicit_deny_of_put_key_policy_locks_the_caller_out() -> None:
    policy = key_policy(
        {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "kms:Put*", "Resource": "*"},
    )
    with pytest.raises(MalformedPolicyDocumentException):
        lockout_check(policy, ctx(ROOT, "kms:PutKeyPolicy"), ())


def test_a_role_session_kept_by_its_role() -> None:
    policy = key_policy(
        {"Effect": "Allow", "Principal": {"AWS": APP_ROLE}, "Action": "kms:*", "Resource": "*"}
    )
    lockout_check(policy, ctx(APP, "kms:CreateKey"), ())


def test_an_identity_deny_locks_the_caller_out() -> None:
    deny_put = identity_policy({"Effect": "Deny", "Action": "kms:PutKeyPolicy", "Resource": "*"})
    policy = compile_policy(default_key_policy(ACCT))
    with pytest.raises(MalformedPolicyDocumentException):
        lockout_check(policy, ctx(ALICE, "kms:PutKeyPolicy"), [ADMIN, deny_put])


@pytest.mark.parametrize(
    ("decision", "tail"),
    [
        (
            Decision(
                False, "because no resource-based policy allows the kms:Encrypt action", "none"
            ),
            "because no resource-based policy allows the kms:Encrypt action",
        ),
        (
            Decision(False, "with an explicit deny in an identity-based policy", "deny"),
            "with an explicit deny in an identity-based policy",
        ),
    ],
)
def test_access_denied_message_shape(decision: Decision, tail: str) -> None:
    request = ctx(f"arn:aws:iam::{ACCT}:user/dev", "kms:Encrypt")
    assert access_denied_message(request, decision) == (
        f"User: arn:aws:iam::{ACCT}:user/dev is not authorized to perform: kms:Encrypt "
        f"on resource: {KEY} {tail}"
    )


def test_an_allowed_decision_has_no_refusal_message() -> None:
    with pytest.raises(ValueError, match="allows"):
        access_denied_message(ctx(ROOT), Decision(True, "allowed by the key policy", "key-policy"))


def test_a_session_is_named_by_its_session_arn_in_the_message() -> None:
    request = ctx(APP, "kms:Decrypt")
    decision = decide(request, key_policy({"Effect": "Allow", "Principal": {"AWS": ROOT},
                                           "Action": "kms:Encrypt", "Resource": "*"}))  # fmt: skip
    assert access_denied_message(request, decision).startswith(f"User: {APP} is not authorized")


# --- Hot-path sanity (no timing assertions: only that the work stays bounded and correct) ----

FIVE_STATEMENTS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*",
             "Resource": "*"},
            {"Sid": "Admins", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{ACCT}:role/Admin"},
             "Action": ["kms:Create*", "kms:Describe*", "kms:Put*", "kms:Get*", "kms:Delete*"],
             "Resource": "*"},
            {"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": [ALICE, APP_ROLE]},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
             "Resource": "*",
             "Condition": {"StringEquals": {"kms:EncryptionContext:app": "billing"},
                           "ForAllValues:StringEquals":
                               {"kms:EncryptionContextKeys": ["app", "tenant"]}}},
            {"Sid": "Grants", "Effect": "Allow", "Principal": {"AWS": APP_ROLE},
             "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*",
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
            {"Sid": "DenyOthers", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt",
             "Resource": "*", "Condition": {"StringNotEquals": {"kms:CallerAccount": ACCT}}},
        ],
    }
)  # fmt: skip


def test_evaluating_many_requests_reuses_the_compiled_policy() -> None:
    policy = compile_policy(FIVE_STATEMENTS)
    good = {"kms:EncryptionContext:app": "billing", "kms:EncryptionContextKeys": ("app",)}
    bad = {"kms:EncryptionContext:app": "payroll", "kms:EncryptionContextKeys": ("app",)}
    requests = [
        (ctx(APP, action, keys), expected)
        for action in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")
        for keys, expected in ((good, True), (bad, False))
    ]
    for _ in range(2_000):
        for request, expected in requests:
            assert decide(request, policy).allowed is expected
    assert compile_policy(FIVE_STATEMENTS) is policy
    # The per-action statement index holds one entry per action name seen, no more.
    assert set(policy._by_action) == {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"}


def test_the_action_index_stays_bounded() -> None:
    policy = compile_policy(default_key_policy(ACCT))
    for i in range(2_000):
        policy.evaluate(ctx(ROOT, f"kms:Op{i}"))
    assert len(policy._by_action) <= 512
