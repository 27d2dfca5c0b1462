"""Condition operators, one row per (condition, request context) with IAM's expected result.

Each row's condition guards an Allow for everyone (``"Principal": "*"``), so the policy's
verdict is "Allow" exactly when the condition holds. Expectations follow the IAM reference
("Condition operators", "Conditions with multiple context keys or values", the multivalued
context key examples) and the KMS developer guide for ``kms:EncryptionContext:``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kms_actors.domain.policy import ConditionValue, compile_policy, encryption_context_keys
from tests.policy._world import ACCT, ALICE, APP, CAROL, ctx, document

EC = "kms:EncryptionContext:app"
KEYS = "kms:EncryptionContextKeys"
PATTERN = "arn:aws:someservice:*:111122223333:finance/*"
SOURCE = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"

T, F = True, False
Row = tuple[str, dict[str, Any], dict[str, ConditionValue], bool]

ROWS: list[Row] = [
    # String operators; kms:EncryptionContext: keys are case-insensitive, values exact.
    ("eq-match", {"StringEquals": {EC: "billing"}}, {EC: "billing"}, T),
    ("eq-value-case", {"StringEquals": {EC: "billing"}}, {EC: "Billing"}, F),
    ("eq-key-case", {"StringEquals": {EC: "billing"}}, {"kms:EncryptionContext:APP": "billing"}, T),
    ("eq-policy-key-case", {"StringEquals": {"KMS:encryptioncontext:App": "billing"}},
     {EC: "billing"}, T),
    ("eq-missing", {"StringEquals": {EC: "billing"}}, {}, F),
    ("eq-other-key", {"StringEquals": {EC: "billing"}}, {"kms:EncryptionContext:x": "billing"}, F),
    ("eq-values-or", {"StringEquals": {EC: ["billing", "payroll"]}}, {EC: "payroll"}, T),
    ("eq-number-value", {"StringEquals": {"kms:CallerAccount": 111122223333}}, {}, T),
    ("ieq", {"StringEqualsIgnoreCase": {EC: "billing"}}, {EC: "BILLING"}, T),
    ("ieq-differs", {"StringEqualsIgnoreCase": {EC: "billing"}}, {EC: "payroll"}, F),
    ("not-ieq", {"StringNotEqualsIgnoreCase": {EC: "billing"}}, {EC: "BILLING"}, F),
    ("ne-missing", {"StringNotEquals": {EC: "billing"}}, {}, T),
    ("ne-equal", {"StringNotEquals": {EC: "billing"}}, {EC: "billing"}, F),
    ("ne-values-nor-hit", {"StringNotEquals": {EC: ["a", "b"]}}, {EC: "b"}, F),
    ("ne-values-nor-miss", {"StringNotEquals": {EC: ["a", "b"]}}, {EC: "c"}, T),
    ("ne-ifexists-missing", {"StringNotEqualsIfExists": {EC: "billing"}}, {}, T),
    ("ne-ifexists-equal", {"StringNotEqualsIfExists": {EC: "billing"}}, {EC: "billing"}, F),
    ("eq-ifexists-missing", {"StringEqualsIfExists": {EC: "billing"}}, {}, T),
    ("eq-ifexists-other", {"StringEqualsIfExists": {EC: "billing"}}, {EC: "payroll"}, F),
    ("like-prefix", {"StringLike": {EC: "bill*"}}, {EC: "billing"}, T),
    ("like-case", {"StringLike": {EC: "bill*"}}, {EC: "Billing"}, F),
    ("like-qmark", {"StringLike": {EC: "bil?ing"}}, {EC: "billing"}, T),
    ("like-qmark-one-char", {"StringLike": {EC: "bil?ing"}}, {EC: "bilking2"}, F),
    ("like-infix", {"StringLike": {EC: "*ll*g"}}, {EC: "billing"}, T),
    ("notlike-hit", {"StringNotLike": {EC: "test-*"}}, {EC: "test-1"}, F),
    ("notlike-miss", {"StringNotLike": {EC: "test-*"}}, {EC: "prod"}, T),
    ("notlike-missing", {"StringNotLike": {EC: "test-*"}}, {}, T),
    # Keys AND, operators AND.
    ("keys-and-both", {"StringEquals": {EC: "billing", "kms:EncryptionContext:env": "prod"}},
     {EC: "billing", "kms:EncryptionContext:env": "prod"}, T),
    ("keys-and-one", {"StringEquals": {EC: "billing", "kms:EncryptionContext:env": "prod"}},
     {EC: "billing"}, F),
    ("ops-and-both", {"StringEquals": {EC: "billing"},
                      "StringLike": {"kms:ViaService": "*.amazonaws.com"}},
     {EC: "billing", "kms:ViaService": "ec2.us-east-1.amazonaws.com"}, T),
    ("ops-and-one", {"StringEquals": {EC: "billing"},
                     "StringLike": {"kms:ViaService": "*.amazonaws.com"}}, {EC: "billing"}, F),
    # Multivalued keys and the set operators.
    ("all-subset", {"ForAllValues:StringEquals": {KEYS: ["app", "env"]}}, {KEYS: ["app"]}, T),
    ("all-equal", {"ForAllValues:StringEquals": {KEYS: ["app", "env"]}}, {KEYS: ["env", "app"]}, T),
    ("all-extra", {"ForAllValues:StringEquals": {KEYS: ["app", "env"]}}, {KEYS: ["app", "x"]}, F),
    ("all-missing", {"ForAllValues:StringEquals": {KEYS: ["app", "env"]}}, {}, T),
    ("all-empty", {"ForAllValues:StringEquals": {KEYS: ["app", "env"]}}, {KEYS: []}, T),
    ("any-hit", {"ForAnyValue:StringEquals": {KEYS: "app"}}, {KEYS: ["x", "app"]}, T),
    ("any-miss", {"ForAnyValue:StringEquals": {KEYS: "app"}}, {KEYS: ["x"]}, F),
    ("any-missing", {"ForAnyValue:StringEquals": {KEYS: "app"}}, {}, F),
    ("any-like", {"ForAnyValue:StringLike": {KEYS: "ap*"}}, {KEYS: ["apple"]}, T),
    ("any-ifexists-missing", {"ForAnyValue:StringEqualsIfExists": {KEYS: "app"}}, {}, T),
    ("all-notlike-legal", {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}},
     {"aws:TagKeys": ["key1:legal"]}, F),
    ("all-notlike-two", {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}},
     {"aws:TagKeys": ["key1:hr", "key1:personnel"]}, F),
    ("all-notlike-audit", {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}},
     {"aws:TagKeys": ["key2:audit"]}, T),
    ("all-notlike-missing", {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}, {}, T),
    ("any-ne-only", {"ForAnyValue:StringNotEquals": {KEYS: "app"}}, {KEYS: ["app"]}, F),
    ("any-ne-other", {"ForAnyValue:StringNotEquals": {KEYS: "app"}}, {KEYS: ["app", "x"]}, T),
    ("any-ne-missing", {"ForAnyValue:StringNotEquals": {KEYS: "app"}}, {}, F),
    ("plain-on-multi", {"StringEquals": {KEYS: "app"}}, {KEYS: ["x", "app"]}, T),
    ("grant-ops", {"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]}},
     {"kms:GrantOperations": ["Decrypt", "RetireGrant"]}, F),
    # Null.
    ("null-false-present", {"Null": {KEYS: "false"}}, {KEYS: ["app"]}, T),
    ("null-false-missing", {"Null": {KEYS: "false"}}, {}, F),
    ("null-true-missing", {"Null": {KEYS: "true"}}, {}, T),
    ("null-true-present", {"Null": {KEYS: "true"}}, {KEYS: ["app"]}, F),
    ("null-json-bool", {"Null": {KEYS: True}}, {}, T),
    # Bool.
    ("bool-true", {"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True}, T),
    ("bool-false", {"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": False}, F),
    ("bool-string", {"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "TRUE"}, T),
    ("bool-missing", {"Bool": {"aws:SecureTransport": "true"}}, {}, F),
    ("bool-json", {"Bool": {"kms:GrantIsForAWSResource": True}},
     {"kms:GrantIsForAWSResource": True}, T),
    # Numeric.
    ("num-lt", {"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": 5}, T),
    ("num-lt-equal", {"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": 10}, F),
    ("num-lt-string", {"NumericLessThan": {"s3:max-keys": 10}}, {"s3:max-keys": "9"}, T),
    ("num-lt-missing", {"NumericLessThan": {"s3:max-keys": 10}}, {}, F),
    ("num-ge", {"NumericGreaterThanEquals": {"s3:max-keys": 10}}, {"s3:max-keys": 10}, T),
    ("num-ne-equal", {"NumericNotEquals": {"s3:max-keys": 10}}, {"s3:max-keys": 10}, F),
    ("num-ne-other", {"NumericNotEquals": {"s3:max-keys": 10}}, {"s3:max-keys": 11}, T),
    ("num-ne-missing", {"NumericNotEquals": {"s3:max-keys": 10}}, {}, T),
    ("num-eq-float", {"NumericEquals": {"s3:max-keys": 10}}, {"s3:max-keys": 10.0}, T),
    ("num-not-a-number", {"NumericEquals": {"s3:max-keys": 10}}, {"s3:max-keys": "ten"}, F),
    # Dates: ISO 8601 or epoch, on either side.
    ("date-lt", {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
     {"aws:CurrentTime": "2024-05-01T12:00:00Z"}, T),
    ("date-lt-after", {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
     {"aws:CurrentTime": "2031-01-01T00:00:00Z"}, F),
    ("date-epoch", {"DateGreaterThan": {"aws:EpochTime": 1700000000}},
     {"aws:EpochTime": 1700000001}, T),
    ("date-mixed", {"DateLessThan": {"aws:CurrentTime": "1700000000"}},
     {"aws:CurrentTime": "2023-11-14T22:13:19Z"}, T),
    ("date-day-only", {"DateGreaterThanEquals": {"aws:CurrentTime": "2024-01-01"}},
     {"aws:CurrentTime": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}, T),
    ("date-offset", {"DateEquals": {"aws:CurrentTime": "2024-01-01T01:00:00+01:00"}},
     {"aws:CurrentTime": "2024-01-01T00:00:00Z"}, T),
    ("date-ne-equal", {"DateNotEquals": {"aws:CurrentTime": "2024-01-01T00:00:00Z"}},
     {"aws:CurrentTime": "2024-01-01T00:00:00Z"}, F),
    # IP addresses.
    ("ip-in", {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
     {"aws:SourceIp": "203.0.113.7"}, T),
    ("ip-out", {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
     {"aws:SourceIp": "198.51.100.1"}, F),
    ("ip-missing", {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {}, F),
    ("ip-v6", {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}},
     {"aws:SourceIp": "2001:db8:1234:5678::1"}, T),
    ("ip-bare-is-32", {"IpAddress": {"aws:SourceIp": "192.0.2.1"}},
     {"aws:SourceIp": "192.0.2.2"}, F),
    ("not-ip-in", {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
     {"aws:SourceIp": "10.1.2.3"}, F),
    ("not-ip-out", {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
     {"aws:SourceIp": "8.8.8.8"}, T),
    ("not-ip-missing", {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {}, T),
    # ARNs: ArnLike matches each of the six parts separately, StringLike does not.
    ("arn-like-parts", {"ArnLike": {"aws:SourceArn": PATTERN}},
     {"aws:SourceArn": SOURCE}, F),
    ("string-like-spans", {"StringLike": {"aws:SourceArn": PATTERN}},
     {"aws:SourceArn": SOURCE}, T),
    ("arn-equals-wild", {"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::bucket-*"}},
     {"aws:SourceArn": "arn:aws:s3:::bucket-1"}, T),
    ("arn-not-like-missing", {"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::*"}}, {}, T),
    ("arn-not-equals-hit", {"ArnNotEquals": {"aws:SourceArn": "arn:aws:s3:::*"}},
     {"aws:SourceArn": "arn:aws:s3:::b"}, F),
    # Binary.
    ("binary", {"BinaryEquals": {"x:bin": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}},
     {"x:bin": b"BinaryValueInBase64"}, T),
    ("binary-other", {"BinaryEquals": {"x:bin": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}},
     {"x:bin": b"other"}, F),
    # KMS and global keys given by the request.
    ("via-service", {"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}},
     {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}, T),
    ("request-alias", {"StringEquals": {"kms:RequestAlias": "alias/app"}},
     {"kms:RequestAlias": "alias/app"}, T),
    ("resource-aliases", {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/app-*"}},
     {"kms:ResourceAliases": ["alias/other", "alias/app-1"]}, T),
    ("key-spec", {"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}},
     {"kms:KeySpec": "RSA_2048"}, F),
    ("resource-tag", {"StringEquals": {"aws:ResourceTag/team": "blue"}},
     {"aws:ResourceTag/team": "blue"}, T),
    ("resource-tag-key-case", {"StringEquals": {"aws:ResourceTag/Team": "blue"}},
     {"aws:resourcetag/team": "blue"}, T),
]  # fmt: skip


@pytest.mark.parametrize(
    ("condition", "keys", "expected"), [pytest.param(*r[1:], id=r[0]) for r in ROWS]
)
def test_condition(
    condition: dict[str, Any], keys: dict[str, ConditionValue], expected: bool
) -> None:
    assert _holds(condition, ALICE, keys) is expected


def _holds(
    condition: dict[str, Any],
    principal: str,
    keys: dict[str, ConditionValue],
    *,
    version: str | None = "2012-10-17",
    request_time: float | None = None,
) -> bool:
    text = document(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": condition,
        },
        version=version,
    )
    request = ctx(principal, "kms:Decrypt", keys, request_time=request_time)
    return compile_policy(text).evaluate(request) == "Allow"


@pytest.mark.parametrize(
    ("condition", "principal", "expected"),
    [
        ({"StringEquals": {"kms:CallerAccount": ACCT}}, ALICE, T),
        ({"StringEquals": {"kms:CallerAccount": ACCT}}, CAROL, F),
        ({"StringEquals": {"aws:PrincipalAccount": ACCT}}, APP, T),
        ({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:user/*"}}, ALICE, T),
        # For a session aws:PrincipalArn is the role's ARN, not the session's.
        ({"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:role/AppRole"}}, APP, T),
        ({"StringEquals": {"aws:PrincipalType": "AssumedRole"}}, APP, T),
        ({"StringEquals": {"aws:PrincipalType": "User"}}, ALICE, T),
        ({"StringEquals": {"aws:username": "alice"}}, ALICE, T),
        ({"Null": {"aws:username": "true"}}, APP, T),
    ],
)
def test_keys_derived_from_the_principal(
    condition: dict[str, Any], principal: str, expected: bool
) -> None:
    assert _holds(condition, principal, {}) is expected


def test_kms_caller_account_is_absent_for_create_key() -> None:
    text = document({"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*",
                     "Condition": {"Null": {"kms:CallerAccount": "true"}}})  # fmt: skip
    policy = compile_policy(text)
    assert policy.evaluate(ctx(ALICE, "kms:CreateKey")) == "Allow"
    assert policy.evaluate(ctx(ALICE, "kms:Encrypt")) == "NotApplicable"


def test_given_keys_win_over_derived_ones() -> None:
    condition = {"StringEquals": {"kms:CallerAccount": "999999999999"}}
    assert _holds(condition, ALICE, {"kms:CallerAccount": "999999999999"})


def test_times_derive_from_the_request_time() -> None:
    moment = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC).timestamp()
    before = {"DateLessThan": {"aws:CurrentTime": "2024-06-01T00:00:00Z"}}
    assert _holds(before, ALICE, {}, request_time=moment)
    assert not _holds(before, ALICE, {})  # no request time: the key is absent
    epoch = {"NumericGreaterThan": {"aws:EpochTime": int(moment) - 1}}
    assert _holds(epoch, ALICE, {}, request_time=moment)


@pytest.mark.parametrize(
    ("condition", "principal", "keys", "expected"),
    [
        ({"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}}, ALICE,
         {"kms:EncryptionContext:owner": "alice"}, T),
        ({"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}}, ALICE,
         {"kms:EncryptionContext:owner": "bob"}, F),
        ({"StringLike": {"kms:EncryptionContext:path": "home/${aws:username}/*"}}, ALICE,
         {"kms:EncryptionContext:path": "home/alice/notes"}, T),
        ({"StringLike": {"kms:EncryptionContext:path": "home/${aws:username}/*"}}, ALICE,
         {"kms:EncryptionContext:path": "home/bob/notes"}, F),
        # A session has no aws:username: the value is unresolvable, unless it has a default.
        ({"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}}, APP,
         {"kms:EncryptionContext:owner": ""}, F),
        ({"StringEquals": {"kms:EncryptionContext:owner": "${aws:username, 'nobody'}"}}, APP,
         {"kms:EncryptionContext:owner": "nobody"}, T),
        ({"StringLike": {"kms:EncryptionContext:v": "a${*}b"}},
         ALICE, {"kms:EncryptionContext:v": "a*b"}, T),
        ({"StringLike": {"kms:EncryptionContext:v": "a${*}b"}},
         ALICE, {"kms:EncryptionContext:v": "axb"}, F),
        ({"StringEquals": {"kms:EncryptionContext:v": "${$}{x}"}},
         ALICE, {"kms:EncryptionContext:v": "${x}"}, T),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::${aws:username}-*"}}, ALICE,
         {"aws:SourceArn": "arn:aws:s3:::alice-bucket"}, T),
        ({"Bool": {"aws:SecureTransport": "${x:flag}"}}, ALICE,
         {"aws:SecureTransport": True, "x:flag": "true"}, T),
    ],
)  # fmt: skip
def test_policy_variables(
    condition: dict[str, Any], principal: str, keys: dict[str, ConditionValue], expected: bool
) -> None:
    assert _holds(condition, principal, keys) is expected


def test_variables_are_literal_text_in_a_2008_policy() -> None:
    condition = {"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}}
    keys: dict[str, ConditionValue] = {"kms:EncryptionContext:owner": "${aws:username}"}
    assert _holds(condition, ALICE, keys, version="2008-10-17")
    assert _holds(condition, ALICE, keys, version=None)  # no Version: IAM's default, 2008-10-17
    assert not _holds(condition, ALICE, keys)


def test_a_resource_with_a_variable() -> None:
    text = document({"Effect": "Allow", "Action": "kms:Encrypt",
                     "Resource": "arn:aws:kms:*:*:key/${aws:username}"})  # fmt: skip
    policy = compile_policy(text, kind="identity")
    assert (
        policy.evaluate(ctx(ALICE, resource=f"arn:aws:kms:us-east-1:{ACCT}:key/alice")) == "Allow"
    )
    assert (
        policy.evaluate(ctx(ALICE, resource=f"arn:aws:kms:us-east-1:{ACCT}:key/bob"))
        == "NotApplicable"
    )
    assert (
        policy.evaluate(ctx(APP, resource=f"arn:aws:kms:us-east-1:{ACCT}:key/")) == "NotApplicable"
    )


def test_encryption_context_keys() -> None:
    keys = encryption_context_keys({"App": "Billing", "tenant": "t1"})
    assert keys == {
        "kms:encryptioncontext:app": "Billing",
        "kms:encryptioncontext:tenant": "t1",
        "kms:encryptioncontextkeys": ("App", "tenant"),
    }
    assert encryption_context_keys({}) == {}
    condition = {
        "StringEquals": {"kms:EncryptionContext:app": "Billing"},
        "ForAllValues:StringEquals": {KEYS: ["App", "tenant"]},
    }
    assert _holds(condition, ALICE, keys)
    assert not _holds({"Null": {KEYS: "false"}}, ALICE, encryption_context_keys(None))
