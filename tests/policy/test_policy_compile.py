"""Compiling policies: what is accepted, what is refused and how the refusal reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kms_actors.domain.policy import (
    INVALID_PRINCIPALS,
    KEY_POLICY_MAX_BYTES,
    PolicyKind,
    compile_policy,
    decide,
    default_key_policy,
)
from kms_actors.errors import LimitExceededException, MalformedPolicyDocumentException
from tests.policy._world import ACCT, ALICE, BOB, ROOT, ctx, document

ALLOW = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}


def _statement(**changes: Any) -> dict[str, Any]:
    statement = dict(ALLOW, **changes)
    return {k: v for k, v in statement.items() if v is not None}


def _with(condition: Any) -> str:
    return document(_statement(Condition=condition))


MALFORMED: list[tuple[str, str, PolicyKind, str]] = [
    ("not-json", "{", "key", "The policy is not valid JSON"),
    ("not-object", "[]", "key", "The policy must be a JSON object"),
    ("no-statement", '{"Version": "2012-10-17"}', "key", "must contain a Statement"),
    ("bad-version", json.dumps({"Version": "2013-01-01", "Statement": [ALLOW]}), "key",
     "The policy must contain a valid version string. Version: 2012-10-17 or 2008-10-17 expected"),
    ("numeric-version", json.dumps({"Version": 2012, "Statement": [ALLOW]}), "key",
     "valid version string"),
    ("unknown-top", json.dumps({"Version": "2012-10-17", "Statement": [ALLOW], "Foo": 1}), "key",
     "Unknown policy element 'Foo'"),
    ("id-type", json.dumps({"Id": 5, "Statement": [ALLOW]}), "key", "Id: must be a string"),
    ("statement-string", document("x"), "key", "Statement[0]: a statement must be a JSON object"),  # type: ignore[arg-type]
    ("effect-case", document(_statement(Effect="allow")), "key",
     'Statement[0].Effect: must be "Allow" or "Deny"'),
    ("effect-missing", document(_statement(Effect=None)), "key", "Statement[0].Effect"),
    ("unknown-element", document(_statement(Actions="kms:*")), "key",
     "Unknown statement element 'Actions'"),
    ("sid-type", document(_statement(Sid=5)), "key", "Statement[0].Sid: must be a string"),
    ("duplicate-sid", document(_statement(Sid="A"), _statement(Sid="A")), "key",
     "Statement IDs (SID) in a single policy must be unique. Statement[1].Sid: 'A' repeats"),
    ("action-and-notaction", document(_statement(NotAction="kms:Decrypt")), "key",
     "cannot have both Action and NotAction"),
    ("resource-and-notresource", document(_statement(NotResource="*")), "key",
     "cannot have both Resource and NotResource"),
    ("action-no-vendor", document(_statement(Action="Encrypt")), "key",
     "'Encrypt': actions must be prefaced by a vendor"),
    ("action-empty-list", document(_statement(Action=[])), "key",
     "Statement[0].Action: must be a string or a non-empty list of strings"),
    ("resource-number", document(_statement(Resource=5)), "key", "Statement[0].Resource: must be"),
    ("located-by-sid", document(_statement(Sid="Use", Effect="Maybe")), "key",
     "Statement[0] (Sid 'Use').Effect"),
    # Principals.
    ("key-no-principal", document(_statement(Principal=None)), "key",
     "a key policy statement must have a Principal or NotPrincipal"),
    ("trust-no-principal", document(_statement(Principal=None)), "trust",
     "a trust policy statement must have a Principal or NotPrincipal"),
    ("principal-and-not", document(_statement(NotPrincipal={"AWS": ALICE})), "key",
     "cannot have both Principal and NotPrincipal"),
    ("identity-principal", document(_statement()), "identity",
     "Policy document should not specify a principal."),
    ("principal-wildcard-arn",
     document(_statement(Principal={"AWS": f"arn:aws:iam::{ACCT}:user/*"})), "key",
     INVALID_PRINCIPALS),
    ("principal-name", document(_statement(Principal={"AWS": "alice"})), "key", INVALID_PRINCIPALS),
    ("principal-short-account", document(_statement(Principal={"AWS": "12345"})), "key",
     INVALID_PRINCIPALS + " Statement[0].Principal.AWS: '12345' is not an account id"),
    ("principal-string", document(_statement(Principal="alice")), "key", INVALID_PRINCIPALS),
    ("principal-type", document(_statement(Principal={"Group": "x"})), "key",
     "Unknown principal type 'Group'"),
    ("principal-empty", document(_statement(Principal={"AWS": []})), "key", INVALID_PRINCIPALS),
    ("principal-service", document(_statement(Principal={"Service": "s3"})), "key",
     "'s3' is not a service principal"),
    # Identity policies.
    ("identity-no-action", document({"Effect": "Allow", "Resource": "*"}), "identity",
     "Policy statement must contain actions."),
    ("identity-no-resource", document({"Effect": "Allow", "Action": "kms:*"}), "identity",
     "Policy statement must contain resources."),
    ("identity-resource-format",
     document({"Effect": "Allow", "Action": "kms:*", "Resource": "key/1"}), "identity",
     "Resource 'key/1' must be in ARN format or \"*\"."),
    # Conditions.
    ("condition-list", _with([]), "key", "Statement[0].Condition: Condition must be a JSON object"),
    ("operator-unknown", _with({"StringEqualz": {"kms:CallerAccount": ACCT}}), "key",
     "Statement[0].Condition['StringEqualz']: unknown condition operator 'StringEqualz'"),
    ("set-operator-unknown", _with({"ForSomeValues:StringEquals": {"aws:TagKeys": "a"}}), "key",
     "unknown condition set operator 'ForSomeValues'"),
    ("null-ifexists", _with({"NullIfExists": {"aws:TagKeys": "true"}}), "key",
     "Null takes neither IfExists nor a set operator"),
    ("operator-not-object", _with({"StringEquals": "x"}), "key",
     "an operator must map condition keys to values"),
    ("key-no-vendor", _with({"StringEquals": {"CallerAccount": ACCT}}), "key",
     "condition keys must be prefaced by a vendor"),
    ("value-object", _with({"StringEquals": {"kms:CallerAccount": {"a": 1}}}), "key",
     "is not a string, number or boolean"),
    ("value-null", _with({"StringEquals": {"kms:CallerAccount": None}}), "key",
     "is not a string, number or boolean"),
    ("value-empty", _with({"StringEquals": {"kms:CallerAccount": []}}), "key",
     "a condition key needs at least one value"),
    ("numeric", _with({"NumericLessThan": {"s3:max-keys": "abc"}}), "key",
     "Statement[0].Condition['NumericLessThan']['s3:max-keys']: 'abc' is not a number"),
    ("date", _with({"DateLessThan": {"aws:CurrentTime": "yesterday"}}), "key",
     "is not an ISO 8601 date or epoch time"),
    ("ip", _with({"IpAddress": {"aws:SourceIp": "300.1.1.1"}}), "key",
     "is not an IP address or CIDR"),
    ("bool", _with({"Bool": {"aws:SecureTransport": "yes"}}), "key", "is not a boolean"),
    ("binary", _with({"BinaryEquals": {"x:bin": "!!!"}}), "key", "is not base64-encoded"),
    ("null-value", _with({"Null": {"aws:TagKeys": "maybe"}}), "key", "is not true or false"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "kind", "message"), [pytest.param(*case[1:], id=case[0]) for case in MALFORMED]
)
def test_malformed(text: str, kind: PolicyKind, message: str) -> None:
    with pytest.raises(MalformedPolicyDocumentException) as raised:
        compile_policy(text, kind=kind)
    assert message in raised.value.message


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": ACCT},
        {"AWS": ROOT},
        {"AWS": [ALICE, BOB]},
        {"AWS": f"arn:aws:iam::{ACCT}:role/path/to/Role"},
        {"AWS": f"arn:aws:sts::{ACCT}:assumed-role/Role/session@example.com"},
        {"AWS": "arn:aws-cn:iam::111122223333:root"},
        {"Service": ["s3.amazonaws.com", "logs.us-east-1.amazonaws.com"]},
        {"Federated": "cognito-identity.amazonaws.com"},
        {"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
    ],
)
def test_principal_forms_accepted(principal: Any) -> None:
    compile_policy(document(_statement(Principal=principal)))


def test_a_single_statement_object_and_a_missing_version_are_accepted() -> None:
    policy = compile_policy(json.dumps({"Statement": ALLOW}))
    assert policy.version == "2008-10-17"
    assert len(policy.statements) == 1


def test_a_key_policy_statement_without_action_or_resource_has_no_effect() -> None:
    # The KMS API reference: such a statement is accepted but has no effect.
    for missing in ("Action", "Resource"):
        policy = compile_policy(document(_statement(**{missing: None})))
        assert not policy.statements[0].effective
        assert policy.evaluate(ctx(ROOT)) == "NotApplicable"


def test_a_trust_policy_needs_no_resource() -> None:
    text = document({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"})
    role = f"arn:aws:iam::{ACCT}:role/Ops"
    policy = compile_policy(text, kind="trust")
    assert policy.evaluate(ctx(ALICE, "sts:AssumeRole", resource=role)) == "Allow"
    assert policy.evaluate(ctx(BOB, "sts:AssumeRole", resource=role)) == "NotApplicable"


def test_an_account_id_principal_means_the_account_root() -> None:
    by_id = compile_policy(document(_statement(Principal={"AWS": ACCT})))
    by_arn = compile_policy(document(_statement(Principal={"AWS": ROOT})))
    for who in (ROOT, ALICE):
        request = ctx(who)
        assert by_id.assess(request) == by_arn.assess(request)


def test_actions_match_case_insensitively_with_wildcards() -> None:
    def allows(pattern: str, action: str) -> bool:
        policy = compile_policy(document(_statement(Action=pattern)))
        return policy.evaluate(ctx(ROOT, action)) == "Allow"

    assert allows("KMS:encrypt", "kms:Encrypt")
    assert allows("kms:Encrypt*", "kms:Encrypt")
    assert allows("kms:ReEncrypt*", "kms:ReEncryptFrom")
    assert allows("kms:GenerateDataKey*", "kms:GenerateDataKeyPairWithoutPlaintext")
    assert allows("*", "kms:Sign")
    assert allows("kms:?ecrypt", "kms:Decrypt")
    assert not allows("kms:Encrypt*", "kms:ReEncryptTo")
    assert not allows("kms:Encrypt", "kms:EncryptX")
    assert not allows("s3:*", "kms:Encrypt")


def test_not_action_and_not_resource() -> None:
    policy = compile_policy(document(_statement(Action=None, NotAction=["kms:Decrypt"])))
    assert policy.evaluate(ctx(ROOT, "kms:Encrypt")) == "Allow"
    assert policy.evaluate(ctx(ROOT, "kms:Decrypt")) == "NotApplicable"
    other_key = f"arn:aws:kms:us-east-1:{ACCT}:key/other"
    policy = compile_policy(document(_statement(Resource=None, NotResource=other_key)))
    assert policy.evaluate(ctx(ROOT)) == "Allow"
    assert policy.evaluate(ctx(ROOT, resource=other_key)) == "NotApplicable"


def test_resources_match_part_by_part() -> None:
    text = document(
        {"Effect": "Allow", "Action": "kms:*", "Resource": f"arn:aws:kms:*:{ACCT}:key/*"}
    )
    policy = compile_policy(text, kind="identity")
    assert policy.evaluate(ctx(ALICE)) == "Allow"
    elsewhere = "arn:aws:kms:eu-west-1:999999999999:key/1"
    assert policy.evaluate(ctx(ALICE, resource=elsewhere)) == "NotApplicable"
    alias = f"arn:aws:kms:us-east-1:{ACCT}:alias/app"
    assert policy.evaluate(ctx(ALICE, resource=alias)) == "NotApplicable"


def test_statements_are_normalised_for_inspection() -> None:
    policy = compile_policy(
        document(_statement(Sid="S", Action=["KMS:Encrypt", "kms:Decrypt*"],
                            Condition={"StringEqualsIfExists": {"KMS:ViaService": ["a", "b"]}}))
    )  # fmt: skip
    (spec,) = policy.statements
    assert spec.sid == "S"
    assert spec.actions == ("kms:encrypt", "kms:decrypt*")
    assert spec.principal == (("AWS", (ROOT,)),)
    assert spec.resources == ("*",)
    assert [tuple(c) for c in spec.conditions] == [
        ("StringEqualsIfExists", "kms:viaservice", ("a", "b"))
    ]


def test_compiled_policies_are_shared_by_text() -> None:
    text = default_key_policy(ACCT)
    assert compile_policy(text) is compile_policy(text)
    assert compile_policy(text).text == text


# --- The 32 KB key policy quota -------------------------------------------------------------


def _padded(size: int) -> str:
    text = document(ALLOW)
    return text[:-1] + " " * (size - len(text.encode())) + text[-1]


def test_a_key_policy_of_exactly_32768_bytes_is_accepted() -> None:
    text = _padded(KEY_POLICY_MAX_BYTES)
    assert len(text.encode()) == 32_768
    compile_policy(text)


def test_a_key_policy_over_32768_bytes_exceeds_the_limit() -> None:
    with pytest.raises(LimitExceededException) as raised:
        compile_policy(_padded(KEY_POLICY_MAX_BYTES + 1))
    assert "32768 bytes" in raised.value.message


def test_the_quota_counts_bytes_not_characters() -> None:
    text = document(_statement(Sid="é" * 16_500))
    assert len(text) < KEY_POLICY_MAX_BYTES < len(text.encode())
    with pytest.raises(LimitExceededException):
        compile_policy(text)


def test_the_quota_is_for_key_policies_only() -> None:
    text = document({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})
    compile_policy(text[:-1] + " " * 40_000 + "}", kind="identity")


# --- The default key policy -----------------------------------------------------------------


def test_the_default_key_policy_reads_as_aws_shows_it() -> None:
    # GetKeyPolicy's output for a key created without a policy, from the KMS developer guide.
    assert default_key_policy("111122223333") == (
        "{\n"
        '  "Version" : "2012-10-17",\n'
        '  "Id" : "key-default-1",\n'
        '  "Statement" : [ {\n'
        '    "Sid" : "Enable IAM User Permissions",\n'
        '    "Effect" : "Allow",\n'
        '    "Principal" : {\n'
        '      "AWS" : "arn:aws:iam::111122223333:root"\n'
        "    },\n"
        '    "Action" : "kms:*",\n'
        '    "Resource" : "*"\n'
        "  } ]\n"
        "}"
    )
    assert "arn:aws-cn:iam::111122223333:root" in default_key_policy(ACCT, "aws-cn")


def test_the_default_key_policy_delegates_to_iam() -> None:
    policy = compile_policy(default_key_policy(ACCT))
    assert decide(ctx(ROOT, "kms:ScheduleKeyDeletion"), policy).via == "key-policy"
    assert policy.evaluate(ctx(ALICE)) == "NotApplicable"
    assert policy.allows_account_delegation(ctx(ALICE))
