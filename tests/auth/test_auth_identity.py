"""Identities, the identity store, session tokens and development mode."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kms_actors.auth import Identity, IdentityStore
from kms_actors.errors import (
    ExpiredTokenException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

from ._botocore import ACCESS_KEY, ACCOUNT, NOW, SECRET, signed, user, verifier

TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token=="
AWS_UNIQUE_ID = re.compile(r"[A-Z0-9]{21}")


def _id(arn: str, account: str = ACCOUNT) -> str:
    return user(arn=arn, account_id=account).user_id


# --- Identity ---------------------------------------------------------------------------------


def test_user_id_of_a_user() -> None:
    user_id = _id(f"arn:aws:iam::{ACCOUNT}:user/alice")
    assert user_id.startswith("AIDA")
    assert AWS_UNIQUE_ID.fullmatch(user_id)
    assert user_id == _id(f"arn:aws:iam::{ACCOUNT}:user/alice")  # stable
    assert user_id != _id(f"arn:aws:iam::{ACCOUNT}:user/bob")
    assert user_id != _id("arn:aws:iam::444455556666:user/alice", "444455556666")


def test_user_id_of_roles_and_their_sessions() -> None:
    role_id = _id(f"arn:aws:iam::{ACCOUNT}:role/deployer")
    assert role_id.startswith("AROA")
    assert AWS_UNIQUE_ID.fullmatch(role_id)
    assert _id(f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci-42") == f"{role_id}:ci-42"
    assert _id(f"arn:aws:iam::{ACCOUNT}:role/service-role/deployer") == role_id


def test_user_id_of_the_root_is_the_account() -> None:
    assert _id(f"arn:aws:iam::{ACCOUNT}:root") == ACCOUNT


def test_explicit_user_id_is_kept() -> None:
    assert user(user_id="AIDAEXPLICIT0000000000").user_id == "AIDAEXPLICIT0000000000"


@pytest.mark.parametrize(
    "changes",
    [
        {"account_id": "12345"},
        {"arn": "arn:aws:iam::444455556666:user/alice"},
        {"arn": f"arn:aws:s3::{ACCOUNT}:bucket"},
        {"arn": f"arn:aws:iam::{ACCOUNT}:assumed-role/r/s"},
        {"arn": f"arn:aws:sts::{ACCOUNT}:user/alice"},
        {"access_key_id": ""},
    ],
    ids=["short-account", "other-account", "not-iam", "iam-session", "sts-user", "no-key"],
)
def test_invalid_identities_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        user(**changes)


def test_repr_hides_the_secrets() -> None:
    text = repr(user(session_token=TOKEN))
    assert SECRET not in text
    assert TOKEN not in text
    assert ACCESS_KEY in text


# --- IdentityStore ----------------------------------------------------------------------------


def test_store_lookup_and_add() -> None:
    store = IdentityStore([user()])
    assert store.lookup(ACCESS_KEY) == user()
    assert store.lookup("ASIATEMPORARY") is None
    temporary = user(access_key_id="ASIATEMPORARY", session_token=TOKEN, expiration=NOW + 60)
    store.add(temporary)
    assert store.lookup("ASIATEMPORARY") == temporary
    assert len(store) == 2
    assert store.prune_expired(NOW + 60) == 1
    assert store.lookup("ASIATEMPORARY") is None


def test_store_refuses_duplicate_keys() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        IdentityStore([user(), user()])


def test_added_identities_can_sign_at_once() -> None:
    checker = verifier()
    other = user(access_key_id="AKIAADDEDLATER000000", secret_access_key="s2")
    with pytest.raises(UnrecognizedClientException):
        signed(access_key=other.access_key_id, secret="s2").verify_with(checker)
    checker._identities.add(other)
    verified = signed(access_key=other.access_key_id, secret="s2").verify_with(checker)
    assert verified.identity == other


# --- Session tokens ---------------------------------------------------------------------------


def test_temporary_credentials_with_their_token() -> None:
    temporary = user(session_token=TOKEN, expiration=NOW + 3600)
    request = signed(token=TOKEN)
    assert request.headers["X-Amz-Security-Token"] == TOKEN
    assert request.verify_with(verifier(temporary)).identity == temporary


@pytest.mark.parametrize(
    "token", [None, TOKEN[:-1] + "A", "short"], ids=["missing", "wrong", "len"]
)
def test_temporary_credentials_need_their_own_token(token: str | None) -> None:
    temporary = user(session_token=TOKEN)
    with pytest.raises(UnrecognizedClientException) as caught:
        signed(token=token).verify_with(verifier(temporary))
    assert caught.value.message == "The security token included in the request is invalid."


def test_long_term_keys_carry_no_token() -> None:
    with pytest.raises(UnrecognizedClientException):
        signed(token=TOKEN).verify_with(verifier(user()))


def test_expired_temporary_credentials() -> None:
    temporary = user(session_token=TOKEN, expiration=NOW - 1)
    with pytest.raises(ExpiredTokenException) as caught:
        signed(token=TOKEN).verify_with(verifier(temporary))
    assert caught.value.message == "The security token included in the request is expired"
    assert caught.value.status == 400


# --- Development mode -------------------------------------------------------------------------


def test_dev_mode_maps_a_twelve_digit_access_key_to_that_account() -> None:
    verified = signed(access_key="444455556666", secret="anything").verify_with(
        verifier(dev_mode=True)
    )
    assert verified.identity.account_id == "444455556666"
    assert verified.identity.arn == "arn:aws:iam::444455556666:root"
    assert verified.identity.user_id == "444455556666"


def test_dev_mode_puts_other_keys_in_the_default_account() -> None:
    verified = signed(access_key="test", secret="test").verify_with(verifier(dev_mode=True))
    assert verified.identity.account_id == "000000000000"
    store = IdentityStore([], dev_mode=True, default_account_id="210987654321")
    assert store.lookup("test") == Identity(
        access_key_id="test",
        secret_access_key="",
        account_id="210987654321",
        arn="arn:aws:iam::210987654321:root",
    )


def test_dev_mode_checks_no_signature_clock_or_token() -> None:
    checker = verifier(user(session_token=TOKEN, expiration=NOW - 1), dev_mode=True)
    for request in (
        signed(secret="wrong"),
        signed()._replace(body=b"tampered"),
        signed(),  # the configured identity's token is neither sent nor needed
    ):
        assert request.verify_with(checker).identity.access_key_id == ACCESS_KEY
    late = verifier(dev_mode=True, now=NOW + 86400)
    assert signed().verify_with(late).identity == user()


def test_dev_mode_still_needs_a_sigv4_request() -> None:
    request = signed()
    unsigned = dict(request.headers)
    del unsigned["Authorization"]
    with pytest.raises(MissingAuthenticationTokenException):
        request._replace(headers=unsigned).verify_with(verifier(dev_mode=True))
    with pytest.raises(InvalidSignatureException, match="correct service"):
        signed(service="s3").verify_with(verifier(dev_mode=True))
