"""Grants, the pure parts: ids, tokens, paging markers, principals, operations, constraints.

A grant token is opaque to callers. Ours is base64url (no padding) of a version byte, the
32-byte grant id, a 16-byte random nonce (so every CreateGrant call gets a different token,
as AWS promises) and the key ARN, so RetireGrant(GrantToken=...) can find the key, even in
another account. A token carries no authority of its own: grants take effect as soon as
CreateGrant returns here, so a token only has to be well formed.

Encryption context grant constraints compare keys case-insensitively and values exactly, as
AWS documents for grant constraints (unlike the case-sensitive match of decryption itself).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from kms_actors.domain.identifiers import is_key_id
from kms_actors.domain.policy import RequestContext, encryption_context_keys, identify
from kms_actors.domain.principal import Caller
from kms_actors.domain.records import KeyRecord
from kms_actors.errors import (
    InvalidGrantIdException,
    InvalidGrantTokenException,
    InvalidMarkerException,
    ValidationException,
)

TOKEN_VERSION: Final = 1
MAX_TOKEN_CHARS: Final = 8192
NONCE_BYTES: Final = 16
MAX_CONSTRAINT_PAIRS: Final = 8
MAX_CONSTRAINT_CHARS: Final = 384

INVALID_GRANT_TOKEN: Final = "The grant token is invalid."  # noqa: S105 - a message

_GRANT_ID: Final = re.compile(r"[0-9a-f]{64}")
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_KEY_ARN: Final = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/(?P<key_id>[0-9a-z-]+)")
_NAME: Final = r"[\w+=,.@-]+"
_PRINCIPAL: Final = re.compile(
    rf"arn:aws[a-z-]*:(?:iam::\d{{12}}:(?:root|(?:user|role)/(?:{_NAME}/)*{_NAME})"
    rf"|sts::\d{{12}}:(?:assumed-role/{_NAME}/{_NAME}|federated-user/{_NAME}))"
)

# Operations that take an encryption context: the only ones a grant constraint applies to.
CONTEXT_OPERATIONS: Final = frozenset(
    {
        "Encrypt",
        "Decrypt",
        "ReEncryptFrom",
        "ReEncryptTo",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
    }
)

# Grant operations every key supports, and those its key usage adds (AWS developer guide,
# "Grant operations"). Symmetric encryption keys also generate data keys and data key pairs.
_ANY_KEY: Final = frozenset({"CreateGrant", "RetireGrant", "DescribeKey"})
_SYMMETRIC: Final = CONTEXT_OPERATIONS
_BY_USAGE: Final[Mapping[str, frozenset[str]]] = {
    "ENCRYPT_DECRYPT": frozenset(
        {"Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey"}
    ),
    "SIGN_VERIFY": frozenset({"Sign", "Verify", "GetPublicKey"}),
    "GENERATE_VERIFY_MAC": frozenset({"GenerateMac", "VerifyMac"}),
    "KEY_AGREEMENT": frozenset({"DeriveSharedSecret", "GetPublicKey"}),
    "KEY_ENCAPSULATION": frozenset({"Encapsulate", "Decapsulate", "GetPublicKey"}),
}

Pairs = frozenset[tuple[str, str]]


# --- ids ------------------------------------------------------------------------------------


def new_grant_id() -> str:
    """Return a fresh grant id: 64 lowercase hex characters, as AWS's."""
    return secrets.token_hex(32)


def check_grant_id(grant_id: str) -> None:
    """Refuse a grant id that cannot be one of ours.

    Raises:
        InvalidGrantIdException: Not 64 lowercase hex characters.
    """
    if _GRANT_ID.fullmatch(grant_id) is None:
        raise InvalidGrantIdException(f"Invalid grant ID {grant_id!r}.")


# --- tokens ---------------------------------------------------------------------------------


class TokenParts(NamedTuple):
    """What a grant token names."""

    key_arn: str
    key_id: str
    grant_id: str


def encode_token(key_arn: str, grant_id: str, nonce: bytes | None = None) -> str:
    """Return a new grant token for the grant ``grant_id`` of the key ``key_arn``."""
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"a token nonce has {NONCE_BYTES} bytes, not {len(nonce)}")
    payload = bytes([TOKEN_VERSION]) + bytes.fromhex(grant_id) + nonce + key_arn.encode()
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def decode_token(token: str) -> TokenParts:
    """Return the key and grant a token names.

    Raises:
        InvalidGrantTokenException: The token is not one this service issued.
    """
    if len(token) > MAX_TOKEN_CHARS or _BASE64URL.fullmatch(token) is None:
        raise InvalidGrantTokenException(INVALID_GRANT_TOKEN)
    try:
        payload = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key_arn = payload[1 + 32 + NONCE_BYTES :].decode("ascii")
    except (binascii.Error, ValueError):
        raise InvalidGrantTokenException(INVALID_GRANT_TOKEN) from None
    match = _KEY_ARN.fullmatch(key_arn)
    if payload[:1] != bytes([TOKEN_VERSION]) or match is None or not is_key_id(match["key_id"]):
        raise InvalidGrantTokenException(INVALID_GRANT_TOKEN)
    return TokenParts(key_arn, match["key_id"], payload[1:33].hex())


def check_tokens(tokens: Iterable[str]) -> None:
    """Refuse a request whose grant tokens are not all well formed.

    Raises:
        InvalidGrantTokenException: A token is not one this service issued.
    """
    for token in tokens:
        decode_token(token)


# --- paging markers -------------------------------------------------------------------------


def encode_marker(creation_date: float, grant_id: str) -> str:
    """Return an opaque marker for paging after the grant ``(creation_date, grant_id)``."""
    return base64.urlsafe_b64encode(f"{creation_date!r}/{grant_id}".encode()).decode("ascii")


def decode_marker(marker: str) -> tuple[float, str]:
    """Return the ``(creation_date, grant_id)`` a marker stands for.

    Raises:
        InvalidMarkerException: The marker was not produced by this service.
    """
    try:
        text = base64.urlsafe_b64decode(marker.encode("ascii")).decode("ascii")
        date, grant_id = text.split("/")
        position = (float(date), grant_id)
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidMarkerException("Invalid marker") from None
    if _GRANT_ID.fullmatch(grant_id) is None or position[0] != position[0]:  # NaN
        raise InvalidMarkerException("Invalid marker")
    return position


# --- principals and operations --------------------------------------------------------------


def check_principal(value: str, member: str) -> None:
    """Refuse a grantee or retiring principal that is not an AWS principal ARN.

    Valid: an account (``arn:aws:iam::<account>:root``), an IAM user or role (with a path),
    an assumed-role session or a federated user.

    Raises:
        ValidationException: Anything else.
    """
    if _PRINCIPAL.fullmatch(value) is None:
        raise ValidationException(
            f"{member} {value!r} is not a valid principal: use the ARN of an AWS account "
            "(arn:aws:iam::<account>:root), IAM user, IAM role, assumed-role session or "
            "federated user."
        )


def account_of(principal_arn: str) -> str:
    """Return the account id in a principal ARN (empty if it has none)."""
    parts = principal_arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def role_of(principal_arn: str) -> tuple[str, str] | None:
    """Return (account, role name) of an IAM role ARN, else None."""
    who = identify(principal_arn, "")
    return (who.account, who.name) if who.kind == "role" else None


def names_caller(principal: str, caller: Caller, delegated: bool) -> bool:
    """Say whether a grant's grantee or retiring principal names the caller.

    It does when it is the caller's ARN, the role of the caller's assumed-role session (by
    the role ARN with its path when the caller carries it, else by account and role name), or
    the caller's account, provided the account delegates to the caller (``delegated``: the
    caller's IAM policies allow the operation) or the caller is the account's root.
    """
    if not principal:
        return False
    if principal == caller.arn:
        return True
    if principal.endswith(":root"):
        return delegated and account_of(principal) == account_of(caller.arn)
    who = identify(caller.arn, caller.account_id, caller.role_arn)
    if who.kind != "session":
        return False
    if who.role_arn_known:
        return principal == who.role_arn
    return role_of(principal) == (account_of(caller.arn), who.name)


def iam_verdict(
    caller: Caller,
    operation: str,
    key: KeyRecord,
    context: Mapping[str, str] | None,
    now: float | None = None,
) -> str:
    """Return the caller's identity policies' verdict on ``kms:<operation>`` on the key.

    "Deny" when one denies, else "Allow" when one allows, else "NotApplicable".
    """
    if not caller.identity_policies:
        return "NotApplicable"
    keys: dict[str, Any] = {
        "kms:KeySpec": key.key_spec,
        "kms:KeyUsage": key.key_usage,
        "kms:KeyOrigin": key.origin,
        "kms:KeyManager": key.key_manager,
    }
    if operation in CONTEXT_OPERATIONS:
        keys.update(encryption_context_keys(context))
    ctx = RequestContext(
        principal_arn=caller.arn,
        principal_account=caller.account_id,
        action=f"kms:{operation}",
        resource=key.arn,
        keys=keys,
        role_arn=caller.role_arn,
        request_time=now,
    )
    verdicts = {policy.evaluate(ctx) for policy in caller.identity_policies}
    if "Deny" in verdicts:
        return "Deny"
    return "Allow" if "Allow" in verdicts else "NotApplicable"


def valid_operations(key_spec: str, key_usage: str) -> frozenset[str]:
    """Return the grant operations a key of this spec and usage supports."""
    extra = _SYMMETRIC if key_spec == "SYMMETRIC_DEFAULT" else _BY_USAGE.get(key_usage, frozenset())
    return _ANY_KEY | extra


def check_operations(operations: Sequence[str], key_spec: str, key_usage: str) -> None:
    """Refuse grant operations the key does not support.

    Raises:
        ValidationException: No operation, or one the key cannot perform.
    """
    if not operations:
        raise ValidationException("A grant must allow at least one grant operation.")
    allowed = valid_operations(key_spec, key_usage)
    bad = [op for op in operations if op not in allowed]
    if bad:
        raise ValidationException(
            f"Grant operations {bad} are not valid for a KMS key with KeySpec {key_spec} "
            f"and KeyUsage {key_usage}. Valid grant operations for this key: "
            f"{sorted(allowed)}."
        )


# --- encryption context constraints ---------------------------------------------------------


def pairs(context: Mapping[str, str] | None) -> Pairs:
    """Return a context's pairs as grant constraints compare them (keys lowercased)."""
    if not context:
        return frozenset()
    return frozenset((name.lower(), value) for name, value in context.items())


def check_constraint(context: Mapping[str, str], member: str) -> None:
    """Refuse an encryption context constraint larger than AWS allows.

    Raises:
        ValidationException: More than 8 pairs, or more than 384 characters in all.
    """
    if len(context) > MAX_CONSTRAINT_PAIRS:
        raise ValidationException(
            f"{member} has {len(context)} encryption context pairs; a grant constraint can "
            f"have at most {MAX_CONSTRAINT_PAIRS}."
        )
    size = sum(len(name) + len(value) for name, value in context.items())
    if size > MAX_CONSTRAINT_CHARS:
        raise ValidationException(
            f"{member} has {size} characters; a grant constraint can have at most "
            f"{MAX_CONSTRAINT_CHARS}."
        )


def check_constraints(
    equals: Mapping[str, str] | None, subset: Mapping[str, str] | None, key_spec: str
) -> None:
    """Refuse the constraints of a new grant that AWS would refuse.

    Raises:
        ValidationException: Both kinds at once, a constraint too large, or a constraint on
            a key whose operations take no encryption context.
    """
    if equals and subset:
        raise ValidationException(
            "A grant can have an EncryptionContextEquals or an EncryptionContextSubset "
            "constraint, not both."
        )
    for member, context in (
        ("EncryptionContextEquals", equals),
        ("EncryptionContextSubset", subset),
    ):
        if context:
            check_constraint(context, member)
    if (equals or subset) and key_spec != "SYMMETRIC_DEFAULT":
        raise ValidationException(
            f"Encryption context grant constraints are not supported on KMS keys with KeySpec "
            f"{key_spec}: their operations take no encryption context."
        )


def constraints_hold(equals: Pairs | None, subset: Pairs | None, request: Pairs, size: int) -> bool:
    """Say whether a request context (its ``pairs`` and its number of pairs) meets them.

    ``equals``: the request context is exactly these pairs; ``subset``: it includes them.
    """
    if equals is not None and (request != equals or size != len(equals)):
        return False
    return subset is None or subset <= request


def at_least_as_strict(
    child_equals: Pairs | None,
    child_subset: Pairs | None,
    parent_equals: Pairs | None,
    parent_subset: Pairs | None,
) -> bool:
    """Say whether a child grant's constraints allow no context its parent's do not.

    AWS requires this of a grant created with CreateGrant permission from another grant.
    """
    if parent_equals is not None:
        return child_equals == parent_equals
    if parent_subset is not None:
        strongest = child_equals if child_equals is not None else child_subset
        return strongest is not None and parent_subset <= strongest
    return True
