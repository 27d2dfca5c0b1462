"""The decision table: principal x action x key policy, with AWS's expected outcome.

Expectations are written by hand from AWS's documented evaluation logic for KMS, one letter
per action (Encrypt, Decrypt, PutKeyPolicy, DescribeKey):

* ``K`` allowed by the key policy alone;
* ``I`` allowed because the key policy names the account (or, cross-account, allows the
  caller) and an identity policy allows;
* ``r`` denied: "because no resource-based policy allows the <action> action";
* ``i`` denied: "because no identity-based policy allows the <action> action";
* ``D`` denied: "with an explicit deny in a resource-based policy";
* ``d`` denied: "with an explicit deny in an identity-based policy".

Identity policies (see ``_world``): alice is an administrator, bob has none, the AppRole
session may Encrypt/Decrypt/GenerateDataKey* on the account's keys, the Ops session is an
administrator with an explicit Deny of kms:Decrypt, carol (another account) may
Encrypt/Decrypt keys of the key's account, dave and both roots have none.
"""

from __future__ import annotations

from typing import Any

import pytest

from kms_actors.domain.policy import Policy, access_denied_message, decide
from tests.policy._world import (
    ACCT,
    ALICE,
    APP,
    APP_ROLE,
    BOB,
    CAROL,
    DAVE,
    IDENTITIES,
    OPS,
    OPS_ROLE,
    OTHER,
    OTHER_ROOT,
    ROOT,
    ctx,
    key_policy,
)

ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:PutKeyPolicy", "kms:DescribeKey")
PRINCIPALS = {
    "root": ROOT,
    "alice": ALICE,
    "bob": BOB,
    "app": APP,
    "ops": OPS,
    "carol": CAROL,
    "dave": DAVE,
    "xroot": OTHER_ROOT,
}


def _allow(principal: Any, action: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*", **extra}


ROOT_ALL = _allow({"AWS": ROOT}, "kms:*")

POLICIES: dict[str, Policy] = {
    # AWS's default key policy: the account, hence IAM policies, decide.
    "default": key_policy({"Sid": "Enable IAM User Permissions", **ROOT_ALL}),
    # No kms:* for the account: alice is named for use, the account (by its bare id) for
    # management only.
    "alice-direct": key_policy(
        _allow({"AWS": ALICE}, ["kms:Encrypt", "kms:Decrypt"]),
        _allow({"AWS": ACCT}, ["kms:PutKeyPolicy", "kms:DescribeKey"]),
    ),
    # A role with a path is named; its sessions match it. Bob is explicitly denied PutKeyPolicy.
    "role": key_policy(
        _allow({"AWS": APP_ROLE}, ["kms:Encrypt*", "kms:Decrypt"]),
        ROOT_ALL,
        {
            "Effect": "Deny",
            "Principal": {"AWS": BOB},
            "Action": "kms:PutKeyPolicy",
            "Resource": "*",
        },
    ),
    # The other account is trusted for use (not management).
    "cross": key_policy(
        ROOT_ALL,
        _allow({"AWS": OTHER_ROOT}, ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]),
    ),
    # Everyone whose kms:CallerAccount is the key's account may use the key.
    "star-caller-account": key_policy(
        _allow(
            "*",
            ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
            Condition={"StringEquals": {"kms:CallerAccount": ACCT}},
        ),
        _allow({"AWS": ROOT}, "kms:PutKeyPolicy"),
    ),
    # Nobody but alice (and the root) may change the policy.
    "deny-notprincipal": key_policy(
        ROOT_ALL,
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": [ALICE, ROOT]},
            "Action": "kms:PutKeyPolicy",
            "Resource": "*",
        },
    ),
    # No account trust at all: only the principals named directly.
    "direct-only": key_policy(
        _allow({"AWS": CAROL}, "kms:Encrypt"),
        _allow({"AWS": OPS_ROLE}, "kms:Decrypt"),
    ),
}

GRIDS: dict[str, dict[str, str]] = {
    "default": {
        "root": "KKKK",
        "alice": "IIII",
        "bob": "iiii",
        "app": "IIii",
        "ops": "IdII",
        "carol": "rrrr",
        "dave": "rrrr",
        "xroot": "rrrr",
    },
    "alice-direct": {
        "root": "rrKK",
        "alice": "KKII",
        "bob": "rrii",
        "app": "rrii",
        "ops": "rdII",
        "carol": "rrrr",
        "dave": "rrrr",
        "xroot": "rrrr",
    },
    "role": {
        "root": "KKKK",
        "alice": "IIII",
        "bob": "iiDi",
        "app": "KKii",
        "ops": "IdII",
        "carol": "rrrr",
        "dave": "rrrr",
        "xroot": "rrrr",
    },
    "cross": {
        "root": "KKKK",
        "alice": "IIII",
        "bob": "iiii",
        "app": "IIii",
        "ops": "IdII",
        "carol": "IIri",
        "dave": "iiri",
        "xroot": "KKrK",
    },
    "star-caller-account": {
        "root": "KKKK",
        "alice": "KKIK",
        "bob": "KKiK",
        "app": "KKiK",
        "ops": "KdIK",
        "carol": "rrrr",
        "dave": "rrrr",
        "xroot": "rrrr",
    },
    "deny-notprincipal": {
        "root": "KKKK",
        "alice": "IIII",
        "bob": "iiDi",
        "app": "IIDi",
        "ops": "IdDI",
        "carol": "rrDr",
        "dave": "rrDr",
        "xroot": "rrDr",
    },
    "direct-only": {
        "root": "rrrr",
        "alice": "rrrr",
        "bob": "rrrr",
        "app": "rrrr",
        "ops": "rdrr",
        "carol": "Irrr",
        "dave": "rrrr",
        "xroot": "rrrr",
    },
}

CASES = [
    pytest.param(policy, who, action, grid[who][i], id=f"{policy}-{who}-{action}")
    for policy, grid in GRIDS.items()
    for who in PRINCIPALS
    for i, action in enumerate(ACTIONS)
]

REASONS = {
    "r": "because no resource-based policy allows the {action} action",
    "i": "because no identity-based policy allows the {action} action",
    "D": "with an explicit deny in a resource-based policy",
    "d": "with an explicit deny in an identity-based policy",
}
VIAS = {
    "K": "key-policy",
    "I": "identity-policy",
    "r": "none",
    "i": "none",
    "D": "deny",
    "d": "deny",
}


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 150


@pytest.mark.parametrize(("policy", "who", "action", "expected"), CASES)
def test_decision(policy: str, who: str, action: str, expected: str) -> None:
    principal = PRINCIPALS[who]
    request = ctx(principal, action)
    decision = decide(request, POLICIES[policy], IDENTITIES[principal])
    assert decision.allowed is (expected in "KI")
    assert decision.via == VIAS[expected]
    if not decision.allowed:
        assert decision.reason == REASONS[expected].format(action=action)
        assert access_denied_message(request, decision) == (
            f"User: {principal} is not authorized to perform: {action} on resource: "
            f"{request.resource} {decision.reason}"
        )


@pytest.mark.parametrize(
    ("role_arn", "expected"),
    [
        ("", True),  # no path known: the session matches the role by account and name
        (APP_ROLE, True),
        (f"arn:aws:iam::{ACCT}:role/AppRole", False),  # a different role (no path)
    ],
)
def test_a_session_matches_its_role_by_path_when_known(role_arn: str, expected: bool) -> None:
    decision = decide(ctx(APP, role_arn=role_arn), POLICIES["role"], ())
    assert decision.allowed is expected


def test_a_session_arn_named_in_the_key_policy_matches_only_that_session() -> None:
    policy = key_policy(_allow({"AWS": APP}, "kms:Encrypt"))
    assert decide(ctx(APP), policy).allowed
    other = f"arn:aws:sts::{ACCT}:assumed-role/AppRole/i-other"
    assert not decide(ctx(other), policy).allowed


def test_a_role_arn_does_not_match_a_user_of_the_same_name() -> None:
    policy = key_policy(_allow({"AWS": f"arn:aws:iam::{ACCT}:role/alice"}, "kms:Encrypt"))
    assert not decide(ctx(ALICE), policy).allowed


def test_a_role_of_another_account_with_the_same_name_does_not_match() -> None:
    policy = key_policy(_allow({"AWS": f"arn:aws:iam::{OTHER}:role/service/AppRole"}, "kms:*"))
    assert not decide(ctx(APP), policy).allowed


def test_an_account_in_a_deny_statement_denies_all_of_its_principals() -> None:
    policy = key_policy(
        ROOT_ALL,
        {"Effect": "Deny", "Principal": {"AWS": ACCT}, "Action": "kms:Decrypt", "Resource": "*"},
    )
    for principal in (ROOT, ALICE, APP):
        decision = decide(ctx(principal, "kms:Decrypt"), policy, IDENTITIES[principal])
        assert decision.via == "deny"
    assert decide(ctx(ALICE, "kms:Encrypt"), policy, IDENTITIES[ALICE]).allowed


def test_not_principal_must_list_account_role_and_session_to_spare_a_session() -> None:
    def deny_all_but(*spared: str) -> Policy:
        return key_policy(
            ROOT_ALL,
            {
                "Effect": "Deny",
                "NotPrincipal": {"AWS": list(spared)},
                "Action": "kms:*",
                "Resource": "*",
            },
        )

    session = ctx(APP, "kms:Encrypt")
    assert decide(session, deny_all_but(APP, APP_ROLE, ROOT), IDENTITIES[APP]).allowed
    for partial in ((APP, APP_ROLE), (APP, ROOT), (APP_ROLE, ROOT)):
        assert decide(session, deny_all_but(*partial), IDENTITIES[APP]).via == "deny"


def test_not_principal_with_allow_allows_everyone_else_directly() -> None:
    def allow_all_but(*spared: str) -> Policy:
        return key_policy(
            {
                "Effect": "Allow",
                "NotPrincipal": {"AWS": list(spared)},
                "Action": "kms:Encrypt",
                "Resource": "*",
            }
        )

    policy = allow_all_but(BOB, ROOT)
    assert decide(ctx(ALICE), policy).via == "key-policy"
    assert decide(ctx(CAROL), policy, IDENTITIES[CAROL]).allowed
    assert not decide(ctx(BOB), policy).allowed
    # Bob alone is not enough: his account is not listed, so the statement still covers him.
    assert decide(ctx(BOB), allow_all_but(BOB)).allowed


def test_a_service_principal_is_allowed_only_by_the_key_policy() -> None:
    policy = key_policy(
        ROOT_ALL, _allow({"Service": "logs.us-east-1.amazonaws.com"}, "kms:Encrypt*")
    )
    service = ctx("logs.us-east-1.amazonaws.com", "kms:Encrypt")
    assert decide(service, policy).via == "key-policy"
    assert not decide(ctx("s3.amazonaws.com", "kms:Encrypt"), policy).allowed
    assert not decide(ctx("logs.us-east-1.amazonaws.com", "kms:Decrypt"), policy).allowed


def test_same_account_can_be_forced() -> None:
    # A caller of the key's account, treated as foreign: delegation alone is not enough.
    policy = POLICIES["default"]
    assert decide(ctx(ALICE), policy, IDENTITIES[ALICE], same_account=False).allowed
    assert not decide(ctx(BOB), policy, (), same_account=False).allowed
