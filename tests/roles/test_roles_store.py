"""RoleStore.assume_role on its own: the trust decision table, sessions, dev mode."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from kms_actors.auth import AssumeRole, AssumeRoleError, Identity, Role, RoleStore
from kms_actors.domain.policy import compile_policy

ACCOUNT = "111122223333"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ops/app"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"
NOW = 1_700_000_000.25


def _trust(*statements: dict[str, Any]) -> Any:
    return compile_policy(
        json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), kind="trust"
    )


def _identity_policy(effect: str, resource: str = ROLE_ARN) -> Any:
    statement = {"Effect": effect, "Action": "sts:AssumeRole", "Resource": resource}
    return compile_policy(
        json.dumps({"Version": "2012-10-17", "Statement": [statement]}), kind="identity"
    )


def _statement(effect: str, principal: str, **condition: Any) -> dict[str, Any]:
    statement = {"Effect": effect, "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return statement


def _user(*policies: Any, arn: str = USER_ARN, account: str = ACCOUNT) -> Identity:
    return Identity(
        access_key_id="AKIAEXAMPLEALICE0001",
        secret_access_key="s",
        account_id=account,
        arn=arn,
        policies=policies,
    )


def _store(trust: Any, **role: Any) -> RoleStore:
    return RoleStore((), roles=[Role(arn=ROLE_ARN, trust_policy=trust, **role)])


def _request(**changes: Any) -> AssumeRole:
    return AssumeRole(**{"role_arn": ROLE_ARN, "session_name": "s1", **changes})


# (trust names the user, trust names the account, trust denies the user,
#  identity policy allows, identity policy denies)
CASES = list(itertools.product([False, True], repeat=5))


@pytest.mark.parametrize(
    ("direct", "account", "trust_deny", "identity_allow", "identity_deny"), CASES
)
def test_trust_decision_table(
    direct: bool, account: bool, trust_deny: bool, identity_allow: bool, identity_deny: bool
) -> None:
    statements = []
    if direct:
        statements.append(_statement("Allow", USER_ARN))
    if account:
        statements.append(_statement("Allow", f"arn:aws:iam::{ACCOUNT}:root"))
    if trust_deny:
        statements.append(_statement("Deny", USER_ARN))
    if not statements:  # a trust policy about somebody else
        statements.append(_statement("Allow", f"arn:aws:iam::{ACCOUNT}:user/bob"))
    policies = []
    if identity_allow:
        policies.append(_identity_policy("Allow"))
    if identity_deny:
        policies.append(_identity_policy("Deny"))
    store = _store(_trust(*statements))
    # AWS: an explicit Deny anywhere wins; otherwise the trust policy naming the caller
    # allows, or naming its account delegates to the caller's identity policies.
    expected = not (trust_deny or identity_deny) and (direct or (account and identity_allow))
    try:
        store.assume_role(_user(*policies), _request(), now=NOW)
    except AssumeRoleError as error:
        assert not expected
        assert (error.code, error.status) == ("AccessDenied", 403)
        assert error.message == (
            f"User: {USER_ARN} is not authorized to perform: sts:AssumeRole on resource: {ROLE_ARN}"
        )
    else:
        assert expected


def test_the_session_identity() -> None:
    role_policy = _identity_policy("Allow", "*")
    store = _store(_trust(_statement("Allow", USER_ARN)), policies=(role_policy,))
    before = len(store)
    session = store.assume_role(_user(), _request(duration_seconds=900), now=NOW)
    assert len(store) == before + 1 and store.lookup(session.access_key_id) == session
    assert session.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"
    assert session.role_arn == ROLE_ARN  # with its path, for policies naming the role
    assert session.policies == (role_policy,)
    assert session.user_id == f"{store.roles[ROLE_ARN].role_id}:s1"
    assert session.expiration == 1_700_000_900.0  # whole seconds, as the answer says
    assert session.session_token and session.access_key_id.startswith("ASIA")
    assert "secret" not in repr(session) and session.session_token not in repr(session)


def test_external_id_condition() -> None:
    trust = _trust(_statement("Allow", USER_ARN, StringEquals={"sts:ExternalId": "tenant-7"}))
    store = _store(trust)
    with pytest.raises(AssumeRoleError):
        store.assume_role(_user(), _request(), now=NOW)
    with pytest.raises(AssumeRoleError):
        store.assume_role(_user(), _request(external_id="tenant-8"), now=NOW)
    store.assume_role(_user(), _request(external_id="tenant-7"), now=NOW)


def test_session_name_and_source_ip_conditions() -> None:
    trust = _trust(
        _statement(
            "Allow",
            USER_ARN,
            StringLike={"sts:RoleSessionName": "ci-*"},
            IpAddress={"aws:SourceIp": "10.0.0.0/8"},
        )
    )
    store = _store(trust)
    store.assume_role(_user(), _request(session_name="ci-7"), now=NOW, source_ip="10.1.2.3")
    for name, ip in (("dev-7", "10.1.2.3"), ("ci-7", "192.0.2.1"), ("ci-7", "")):
        with pytest.raises(AssumeRoleError):
            store.assume_role(_user(), _request(session_name=name), now=NOW, source_ip=ip)


def test_root_may_assume_roles_only_in_development_mode() -> None:
    trust = _trust(_statement("Allow", ACCOUNT))
    root = _user(arn=f"arn:aws:iam::{ACCOUNT}:root")
    with pytest.raises(AssumeRoleError, match=r"^Roles may not be assumed by root accounts\.$"):
        _store(trust).assume_role(root, _request(), now=NOW)
    dev = RoleStore(
        (),
        roles=[Role(arn=ROLE_ARN, trust_policy=trust)],
        dev_mode=True,
        default_account_id=ACCOUNT,
    )
    anyone = dev.lookup("AKIAANYTHING")
    assert anyone is not None
    session = dev.assume_role(anyone, _request(), now=NOW)
    assert dev.lookup(session.access_key_id) == session


def test_role_takes_a_trust_policy_and_a_role_arn() -> None:
    with pytest.raises(ValueError, match="trust policy"):
        Role(arn=ROLE_ARN, trust_policy=_identity_policy("Allow"))
    with pytest.raises(ValueError, match="not a role ARN"):
        Role(arn=USER_ARN, trust_policy=_trust(_statement("Allow", ACCOUNT)))
    with pytest.raises(ValueError, match="duplicate role"):
        role = Role(arn=ROLE_ARN, trust_policy=_trust(_statement("Allow", ACCOUNT)))
        RoleStore((), roles=[role, role])


def test_default_duration_is_an_hour_or_the_role_maximum() -> None:
    trust = _trust(_statement("Allow", USER_ARN))
    session = _store(trust).assume_role(_user(), _request(), now=NOW)
    assert session.expiration == 1_700_003_600.0
    short = _store(trust, max_session_seconds=900).assume_role(_user(), _request(), now=NOW)
    assert short.expiration == 1_700_000_900.0
