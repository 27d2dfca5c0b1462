"""GrantBook.allows: who a grant names, which operations, which contexts, which tokens."""

from __future__ import annotations

import pytest

from kms_actors.domain.grants import encode_token
from kms_actors.domain.principal import Caller
from kms_actors.errors import InvalidGrantTokenException
from kms_actors.keys.grants import GrantBook
from kms_actors.keys.messages import CreateGrant, ListGrants

from ._support import (
    ACCT,
    ALICE,
    APP_ROLE,
    APP_SESSION,
    BOB,
    CAROL,
    KEY,
    KEY_ARN,
    OPS_ROLE,
    OPS_SESSION,
    OTHER,
    OTHER_ROOT,
    ROOT,
    caller,
    identity,
    new_book,
    request,
)

pytestmark = pytest.mark.anyio

EC = {"Department": "IT", "Project": "alpha"}


async def book_with(*requests: CreateGrant) -> GrantBook:
    """Return a book with grants created from CreateGrant messages, as the account root."""
    book = new_book()
    for message in requests:
        await book.create(KEY, caller(ROOT), message)
    return book


def allowed(
    book: GrantBook,
    who: Caller,
    operation: str,
    context: dict[str, str] | None = None,
    tokens: tuple[str, ...] = (),
) -> bool:
    return book.allows(who, operation, context, tokens)


async def test_empty_book_allows_nothing() -> None:
    book = new_book()
    assert len(book) == 0
    assert not allowed(book, caller(ALICE), "Decrypt")


async def test_grantee_gets_exactly_the_granted_operations() -> None:
    book = await book_with(request(ALICE, "Encrypt", "DescribeKey"))
    assert allowed(book, caller(ALICE), "Encrypt")
    assert allowed(book, caller(ALICE), "DescribeKey")
    for operation in ("Decrypt", "GenerateDataKey", "CreateGrant", "RetireGrant", "ListGrants"):
        assert not allowed(book, caller(ALICE), operation), operation


async def test_only_the_grantee_is_allowed() -> None:
    book = await book_with(request(ALICE, "Decrypt"))
    for other in (BOB, ROOT, CAROL, OTHER_ROOT, APP_SESSION):
        assert not allowed(book, caller(other), "Decrypt"), other


async def test_several_grants_add_up() -> None:
    book = await book_with(
        request(ALICE, "Encrypt"), request(ALICE, "Decrypt"), request(BOB, "GenerateDataKey")
    )
    assert allowed(book, caller(ALICE), "Encrypt")
    assert allowed(book, caller(ALICE), "Decrypt")
    assert not allowed(book, caller(ALICE), "GenerateDataKey")
    assert allowed(book, caller(BOB), "GenerateDataKey")


async def test_role_grant_applies_to_its_sessions() -> None:
    book = await book_with(request(OPS_ROLE, "Decrypt"))
    assert allowed(book, caller(OPS_ROLE), "Decrypt")
    assert allowed(book, caller(OPS_SESSION), "Decrypt")
    assert allowed(book, caller(OPS_SESSION, role_arn=OPS_ROLE), "Decrypt")
    other_role = f"arn:aws:sts::{ACCT}:assumed-role/Other/jane"
    assert not allowed(book, caller(other_role), "Decrypt")
    other_account = f"arn:aws:sts::{OTHER}:assumed-role/Ops/jane"
    assert not allowed(book, caller(other_account), "Decrypt")


async def test_role_with_a_path_matches_its_sessions() -> None:
    book = await book_with(request(APP_ROLE, "Encrypt"))
    # Without the role ARN the session is matched by account and role name.
    assert allowed(book, caller(APP_SESSION), "Encrypt")
    # With it, the path must match too.
    assert allowed(book, caller(APP_SESSION, role_arn=APP_ROLE), "Encrypt")
    elsewhere = f"arn:aws:iam::{ACCT}:role/elsewhere/AppRole"
    assert not allowed(book, caller(APP_SESSION, role_arn=elsewhere), "Encrypt")


async def test_session_grant_names_only_that_session() -> None:
    book = await book_with(request(OPS_SESSION, "Decrypt"))
    assert allowed(book, caller(OPS_SESSION), "Decrypt")
    assert not allowed(book, caller(OPS_ROLE), "Decrypt")
    assert not allowed(book, caller(f"arn:aws:sts::{ACCT}:assumed-role/Ops/other"), "Decrypt")


async def test_account_grant_needs_the_accounts_iam_delegation() -> None:
    book = await book_with(request(OTHER_ROOT, "Decrypt"))
    assert allowed(book, caller(OTHER_ROOT), "Decrypt")
    assert not allowed(book, caller(CAROL), "Decrypt")
    assert allowed(book, caller(CAROL, identity("kms:Decrypt")), "Decrypt")
    assert allowed(book, caller(CAROL, identity("kms:*", resource=KEY_ARN)), "Decrypt")
    assert not allowed(book, caller(CAROL, identity("kms:Encrypt")), "Decrypt")
    other_key = KEY_ARN.replace("1234abcd", "9999abcd")
    assert not allowed(book, caller(CAROL, identity("kms:Decrypt", resource=other_key)), "Decrypt")
    # A principal of the key's own account is not a principal of the grantee account.
    assert not allowed(book, caller(ALICE, identity("kms:Decrypt")), "Decrypt")


async def test_account_grant_delegation_sees_the_encryption_context() -> None:
    book = await book_with(request(OTHER_ROOT, "Decrypt"))
    policy = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt",'
        ' "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:app": "x"}}}]}'
    )
    assert allowed(book, caller(CAROL, policy), "Decrypt", {"app": "x"})
    assert not allowed(book, caller(CAROL, policy), "Decrypt", {"app": "y"})


async def test_equals_constraint_applies_to_context_operations() -> None:
    book = await book_with(
        request(
            ALICE,
            "Encrypt",
            "Decrypt",
            "GenerateDataKey",
            "ReEncryptFrom",
            "DescribeKey",
            "CreateGrant",
            "RetireGrant",
            encryption_context_equals=EC,
        )
    )
    alice = caller(ALICE)
    for operation in ("Encrypt", "Decrypt", "GenerateDataKey", "ReEncryptFrom"):
        assert allowed(book, alice, operation, EC), operation
        assert allowed(book, alice, operation, {"department": "IT", "PROJECT": "alpha"})
        assert not allowed(book, alice, operation, {"Department": "IT"}), operation
        assert not allowed(book, alice, operation, {**EC, "extra": "1"}), operation
        assert not allowed(book, alice, operation, None), operation
    # AWS: the constraint does not apply to operations without an encryption context.
    for operation in ("DescribeKey", "CreateGrant", "RetireGrant"):
        assert allowed(book, alice, operation, None), operation


async def test_subset_constraint() -> None:
    book = await book_with(
        request(ALICE, "Decrypt", "DescribeKey", encryption_context_subset={"Department": "IT"})
    )
    alice = caller(ALICE)
    assert allowed(book, alice, "Decrypt", {"Department": "IT"})
    assert allowed(book, alice, "Decrypt", EC)
    assert not allowed(book, alice, "Decrypt", {"Department": "it"})
    assert not allowed(book, alice, "Decrypt", {"Project": "alpha"})
    assert not allowed(book, alice, "Decrypt", {})
    assert allowed(book, alice, "DescribeKey", None)


async def test_a_constrained_grant_does_not_hide_an_unconstrained_one() -> None:
    book = await book_with(
        request(ALICE, "Decrypt", encryption_context_equals={"a": "1"}), request(ALICE, "Decrypt")
    )
    assert allowed(book, caller(ALICE), "Decrypt", {"b": "2"})


async def test_grant_tokens_must_be_well_formed() -> None:
    book = await book_with(request(ALICE, "Decrypt"))
    token = encode_token(KEY_ARN, "b" * 64)
    other_key_token = encode_token(KEY_ARN.replace("1234abcd", "9999abcd"), "c" * 64)
    # Grants take effect at once here, so a well-formed token changes nothing.
    assert allowed(book, caller(ALICE), "Decrypt", tokens=(token, other_key_token))
    assert not allowed(book, caller(BOB), "Decrypt", tokens=(token,))
    with pytest.raises(InvalidGrantTokenException):
        allowed(book, caller(ALICE), "Decrypt", tokens=(token, "garbage!"))
    with pytest.raises(InvalidGrantTokenException):
        allowed(new_book(), caller(ALICE), "Decrypt", tokens=("garbage!",))


async def test_revoked_grant_no_longer_allows() -> None:
    book = await book_with(request(ALICE, "Decrypt"), request(ALICE, "Decrypt"))
    first, second = (g.grant_id for g in book.list(KEY, ListGrants())[0])
    await book.revoke(KEY, first)
    assert allowed(book, caller(ALICE), "Decrypt")
    await book.revoke(KEY, second)
    assert not allowed(book, caller(ALICE), "Decrypt")
