"""The pure grant helpers: tokens, markers, principals, operations, constraints."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kms_actors.domain import grants as g
from kms_actors.domain.identifiers import is_key_id
from kms_actors.errors import (
    InvalidGrantIdException,
    InvalidGrantTokenException,
    InvalidMarkerException,
    ValidationException,
)

from ._support import ALICE, APP_ROLE, APP_SESSION, KEY_ARN, KEY_ID, ROOT

GRANT_ID = "a" * 64


def _raw_token(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


# --- ids and tokens -------------------------------------------------------------------------


def test_new_grant_ids_are_64_lowercase_hex_and_unique() -> None:
    ids = {g.new_grant_id() for _ in range(100)}
    assert len(ids) == 100
    for grant_id in ids:
        g.check_grant_id(grant_id)


@pytest.mark.parametrize("bad", ["", "A" * 64, "a" * 63, "a" * 65, "g" * 64, "a" * 63 + " "])
def test_malformed_grant_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidGrantIdException):
        g.check_grant_id(bad)


def test_token_round_trip_names_key_and_grant() -> None:
    grant_id = g.new_grant_id()
    token = g.encode_token(KEY_ARN, grant_id)
    assert g.decode_token(token) == g.TokenParts(KEY_ARN, KEY_ID, grant_id)
    assert len(token) <= g.MAX_TOKEN_CHARS
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_tokens_are_unique_per_call() -> None:
    tokens = {g.encode_token(KEY_ARN, GRANT_ID) for _ in range(50)}
    assert len(tokens) == 50
    assert {g.decode_token(t).grant_id for t in tokens} == {GRANT_ID}


def test_token_of_another_account_and_partition() -> None:
    arn = f"arn:aws-cn:kms:cn-north-1:444455556666:key/{KEY_ID}"
    assert g.decode_token(g.encode_token(arn, GRANT_ID)).key_arn == arn


_GOOD_PAYLOAD = bytes([1]) + bytes.fromhex(GRANT_ID) + bytes(16) + KEY_ARN.encode()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a token",
        "@@@@",
        "a" * (g.MAX_TOKEN_CHARS + 1),
        _raw_token(b"\x02" + _GOOD_PAYLOAD[1:]),  # unknown version
        _raw_token(_GOOD_PAYLOAD[:40]),  # truncated
        _raw_token(_GOOD_PAYLOAD[:49] + b"arn:aws:kms:us-east-1:111122223333:alias/x"),
        _raw_token(_GOOD_PAYLOAD[:49] + b"arn:aws:kms:us-east-1:111122223333:key/nope"),
        _raw_token(_GOOD_PAYLOAD[:49] + "arn:aws:kms:é".encode()),
        _raw_token(_GOOD_PAYLOAD) + "=",  # padding is not part of our alphabet
        base64.b64encode(_GOOD_PAYLOAD).decode() + "+/",  # standard alphabet
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidGrantTokenException) as raised:
        g.decode_token(token)
    assert raised.value.message == g.INVALID_GRANT_TOKEN
    with pytest.raises(InvalidGrantTokenException):
        g.check_tokens([g.encode_token(KEY_ARN, GRANT_ID), token])


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(_raw_token)))
def test_decoding_fails_only_as_invalid_grant_token(token: str) -> None:
    with contextlib.suppress(InvalidGrantTokenException):
        parts = g.decode_token(token)
        assert is_key_id(parts.key_id) and len(parts.grant_id) == 64


def test_token_nonce_must_have_16_bytes() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        g.encode_token(KEY_ARN, GRANT_ID, b"short")


# --- markers --------------------------------------------------------------------------------


@given(
    st.floats(min_value=0, max_value=4e9, allow_nan=False), st.sampled_from(["0" * 64, "f" * 64])
)
def test_marker_round_trip_is_exact(date: float, grant_id: str) -> None:
    assert g.decode_marker(g.encode_marker(date, grant_id)) == (date, grant_id)


@pytest.mark.parametrize(
    "marker",
    [
        "",
        "!!!",
        base64.urlsafe_b64encode(b"1.5").decode(),
        base64.urlsafe_b64encode(b"x/" + b"a" * 64).decode(),
        base64.urlsafe_b64encode(b"1.5/" + b"A" * 64).decode(),
        base64.urlsafe_b64encode(b"nan/" + b"a" * 64).decode(),
        "é",
    ],
)
def test_bad_markers_are_refused(marker: str) -> None:
    with pytest.raises(InvalidMarkerException):
        g.decode_marker(marker)


# --- principals and operations --------------------------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [
        ROOT,
        ALICE,
        APP_ROLE,
        APP_SESSION,
        "arn:aws:iam::111122223333:user/a/b/c/d",
        "arn:aws:sts::111122223333:federated-user/bob",
        "arn:aws-us-gov:iam::111122223333:role/R",
    ],
)
def test_valid_principals(principal: str) -> None:
    g.check_principal(principal, "GranteePrincipal")


@pytest.mark.parametrize(
    "principal",
    [
        "",
        "*",
        "111122223333",
        "alice",
        "s3.amazonaws.com",
        "arn:aws:iam::1111:user/alice",
        "arn:aws:iam::111122223333:group/admins",
        "arn:aws:iam::111122223333:user/*",
        f"{KEY_ARN}",
    ],
)
def test_invalid_principals(principal: str) -> None:
    with pytest.raises(ValidationException, match="GranteePrincipal"):
        g.check_principal(principal, "GranteePrincipal")


def test_account_of() -> None:
    assert g.account_of(ALICE) == "111122223333"
    assert g.account_of("nonsense") == ""


def test_symmetric_key_grant_operations() -> None:
    assert g.valid_operations("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT") == {
        "Encrypt",
        "Decrypt",
        "ReEncryptFrom",
        "ReEncryptTo",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
    }


@pytest.mark.parametrize(
    ("spec", "usage", "valid", "invalid"),
    [
        ("RSA_2048", "ENCRYPT_DECRYPT", "GetPublicKey", "GenerateDataKey"),
        ("ECC_NIST_P256", "SIGN_VERIFY", "Sign", "Encrypt"),
        ("HMAC_256", "GENERATE_VERIFY_MAC", "VerifyMac", "Decrypt"),
        ("ECC_NIST_P256", "KEY_AGREEMENT", "DeriveSharedSecret", "Sign"),
    ],
)
def test_asymmetric_and_hmac_key_grant_operations(
    spec: str, usage: str, valid: str, invalid: str
) -> None:
    g.check_operations([valid, "DescribeKey"], spec, usage)
    with pytest.raises(ValidationException, match=invalid):
        g.check_operations([valid, invalid], spec, usage)


@pytest.mark.parametrize("operation", ["Sign", "Verify", "GetPublicKey", "GenerateMac"])
def test_symmetric_key_refuses_other_operations(operation: str) -> None:
    with pytest.raises(ValidationException) as raised:
        g.check_operations(["Decrypt", operation], "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert f"['{operation}']" in raised.value.message
    assert "SYMMETRIC_DEFAULT" in raised.value.message


def test_no_operation_is_refused() -> None:
    with pytest.raises(ValidationException, match="at least one"):
        g.check_operations([], "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")


# --- constraints ----------------------------------------------------------------------------


def _holds(
    equals: dict[str, str] | None, subset: dict[str, str] | None, ctx: dict[str, str]
) -> bool:
    return g.constraints_hold(
        g.pairs(equals) if equals else None,
        g.pairs(subset) if subset else None,
        g.pairs(ctx),
        len(ctx),
    )


@pytest.mark.parametrize(
    ("equals", "ctx", "expected"),
    [
        ({"a": "1"}, {"a": "1"}, True),
        ({"a": "1"}, {"A": "1"}, True),  # keys compare case-insensitively
        ({"a": "1"}, {"a": "X"}, False),
        ({"a": "x"}, {"a": "X"}, False),  # values are case sensitive
        ({"a": "1"}, {"a": "1", "b": "2"}, False),
        ({"a": "1", "b": "2"}, {"a": "1"}, False),
        ({"a": "1"}, {}, False),
        ({"a": "1"}, {"a": "1", "A": "1"}, False),  # two pairs are not one
    ],
)
def test_encryption_context_equals(
    equals: dict[str, str], ctx: dict[str, str], expected: bool
) -> None:
    assert _holds(equals, None, ctx) is expected


@pytest.mark.parametrize(
    ("subset", "ctx", "expected"),
    [
        ({"a": "1"}, {"a": "1"}, True),
        ({"a": "1"}, {"a": "1", "b": "2"}, True),
        ({"Dept": "IT"}, {"dept": "IT", "x": "y"}, True),
        ({"a": "1", "b": "2"}, {"a": "1"}, False),
        ({"a": "1"}, {"a": "2"}, False),
        ({"a": "1"}, {}, False),
    ],
)
def test_encryption_context_subset(
    subset: dict[str, str], ctx: dict[str, str], expected: bool
) -> None:
    assert _holds(None, subset, ctx) is expected


def test_no_constraint_holds_for_any_context() -> None:
    assert _holds(None, None, {})
    assert _holds(None, None, {"a": "b"})


def test_constraints_may_not_be_combined() -> None:
    with pytest.raises(ValidationException, match="not both"):
        g.check_constraints({"a": "1"}, {"b": "2"}, "SYMMETRIC_DEFAULT")


def test_constraint_size_limits() -> None:
    g.check_constraints({f"k{i}": "v" for i in range(8)}, None, "SYMMETRIC_DEFAULT")
    with pytest.raises(ValidationException, match="at most 8"):
        g.check_constraints({f"k{i}": "v" for i in range(9)}, None, "SYMMETRIC_DEFAULT")
    g.check_constraints(None, {"k": "v" * 383}, "SYMMETRIC_DEFAULT")
    with pytest.raises(ValidationException, match="at most 384"):
        g.check_constraints(None, {"k": "v" * 384}, "SYMMETRIC_DEFAULT")


def test_constraints_need_a_key_whose_operations_take_a_context() -> None:
    with pytest.raises(ValidationException, match="RSA_2048"):
        g.check_constraints({"a": "1"}, None, "RSA_2048")
    g.check_constraints(None, None, "RSA_2048")


def _strict(
    child: tuple[dict[str, str] | None, dict[str, str] | None],
    parent: tuple[dict[str, str] | None, dict[str, str] | None],
) -> bool:
    def p(c: dict[str, str] | None) -> g.Pairs | None:
        return g.pairs(c) if c else None

    return g.at_least_as_strict(p(child[0]), p(child[1]), p(parent[0]), p(parent[1]))


@pytest.mark.parametrize(
    ("child", "parent", "expected"),
    [
        ((None, None), (None, None), True),
        (({"a": "1"}, None), (None, None), True),
        ((None, None), (None, {"a": "1"}), False),
        ((None, {"a": "1"}), (None, {"a": "1"}), True),
        ((None, {"A": "1", "b": "2"}), (None, {"a": "1"}), True),
        ((None, {"b": "2"}), (None, {"a": "1"}), False),
        (({"a": "1", "b": "2"}, None), (None, {"a": "1"}), True),
        (({"b": "2"}, None), (None, {"a": "1"}), False),
        (({"a": "1"}, None), ({"a": "1"}, None), True),
        (({"a": "1", "b": "2"}, None), ({"a": "1"}, None), False),
        ((None, {"a": "1"}), ({"a": "1"}, None), False),
        ((None, None), ({"a": "1"}, None), False),
    ],
)
def test_at_least_as_strict(
    child: tuple[dict[str, str] | None, dict[str, str] | None],
    parent: tuple[dict[str, str] | None, dict[str, str] | None],
    expected: bool,
) -> None:
    assert _strict(child, parent) is expected
