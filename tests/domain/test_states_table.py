"""Every key state against every operation, checked against the AWS KMS key-state table.

The expected table is written by hand from the AWS KMS Developer Guide, "Key states of AWS KMS
keys" (docs.aws.amazon.com/kms/latest/developerguide/key-state.html), not from the code under
test. Its columns are the five states the guide's table covers (Enabled, Disabled,
PendingImport, PendingDeletion, Unavailable); its footnotes give the error for each refusal:

    DisabledException: <key ARN> is disabled.
    KMSInvalidStateException: <key ARN> is pending deletion.
    KMSInvalidStateException: <key ARN> is not pending deletion.
    KMSInvalidStateException: <key ARN> is pending import.
    KeyUnavailableException: <key ARN> is unavailable.
    UnsupportedOperationException: <key ARN> origin is EXTERNAL which is not valid for this
        operation.

Some cells depend on the key's origin or key store rather than its state (the guide answers
UnsupportedOperationException there); for those the state check must either let the request
through to the origin check or answer UnsupportedOperationException itself, never a state
error. The multi-Region transient states (Creating, Updating, PendingReplicaDeletion) are
outside the guide's table; only what other guide pages say about them is asserted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from kms_actors.domain.states import ALLOWED, CRYPTO_OPS, TRANSITIONS, KeyState, check, refusal
from kms_actors.domain.states import transition as next_state
from kms_actors.errors import (
    DisabledException,
    KeyUnavailableException,
    KmsError,
    KMSInvalidStateException,
    UnsupportedOperationException,
)

ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@dataclass(frozen=True)
class Allowed:
    """The operation runs."""


@dataclass(frozen=True)
class Refused:
    """The operation fails with ``error`` and ``<key ARN> <message>``.

    ``error`` or ``message`` is None where the guide marks the cell as failing without naming
    the error or its wording.
    """

    error: type[KmsError] | None
    message: str | None


@dataclass(frozen=True)
class OriginDecides:
    """The guide's answer depends on the key's origin or key store, not on its state."""

    message: str | None = None


@dataclass(frozen=True)
class Undocumented:
    """The guide does not say; only the shape of a refusal is checked."""


Cell = Allowed | Refused | OriginDecides | Undocumented

OK = Allowed()
DISABLED = Refused(DisabledException, "is disabled.")
PENDING_DELETION = Refused(KMSInvalidStateException, "is pending deletion.")
NOT_PENDING_DELETION = Refused(KMSInvalidStateException, "is not pending deletion.")
PENDING_IMPORT = Refused(KMSInvalidStateException, "is pending import.")
UNAVAILABLE = Refused(KeyUnavailableException, "is unavailable.")
REFUSED = Refused(None, None)
EXTERNAL_ORIGIN = OriginDecides("origin is EXTERNAL which is not valid for this operation.")
ORIGIN = OriginDecides()
UNDOCUMENTED = Undocumented()

S = KeyState
GUIDE_STATES = (S.ENABLED, S.DISABLED, S.PENDING_IMPORT, S.PENDING_DELETION, S.UNAVAILABLE)
MULTI_REGION_STATES = (S.CREATING, S.UPDATING, S.PENDING_REPLICA_DELETION)


def row(
    enabled: Cell,
    disabled: Cell,
    pending_import: Cell,
    pending_deletion: Cell,
    unavailable: Cell,
    *,
    multi_region: Cell = UNDOCUMENTED,
) -> dict[KeyState, Cell]:
    """Return one row of the guide's table, in the guide's column order."""
    cells = (enabled, disabled, pending_import, pending_deletion, unavailable)
    table: dict[KeyState, Cell] = dict(zip(GUIDE_STATES, cells, strict=True))
    table.update(dict.fromkeys(MULTI_REGION_STATES, multi_region))
    return table


def crypto_row() -> dict[KeyState, Cell]:
    table = row(OK, DISABLED, PENDING_IMPORT, PENDING_DELETION, UNAVAILABLE)
    # "If you schedule the deletion of a primary key with replicas, its key state changes to
    # PendingReplicaDeletion and it cannot be ... used in cryptographic operations."
    # (ScheduleKeyDeletion, AWS KMS API Reference.)
    table[S.PENDING_REPLICA_DELETION] = Refused(KMSInvalidStateException, None)
    return table


def always_allowed_row() -> dict[KeyState, Cell]:
    return row(OK, OK, OK, OK, OK, multi_region=OK)


CRYPTO = (
    "Encrypt",
    "Decrypt",
    "ReEncryptFrom",  # the guide's single ReEncrypt row covers both keys of a ReEncrypt
    "ReEncryptTo",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "Sign",
    "Verify",
    "GetPublicKey",
    "DeriveSharedSecret",
)

ROTATION = row(ORIGIN, DISABLED, EXTERNAL_ORIGIN, PENDING_DELETION, ORIGIN)
IMPORT = row(ORIGIN, ORIGIN, OK, Refused(KMSInvalidStateException, None), ORIGIN)
EDIT = row(OK, OK, OK, PENDING_DELETION, OK)

GUIDE: Mapping[str, Mapping[KeyState, Cell]] = {
    **{operation: crypto_row() for operation in CRYPTO},
    # EnableKey and DisableKey succeed on an Unavailable key; its state changes only once its
    # key store is connected again.
    "EnableKey": row(OK, OK, PENDING_IMPORT, PENDING_DELETION, OK),
    "DisableKey": row(OK, OK, PENDING_IMPORT, PENDING_DELETION, OK),
    "ScheduleKeyDeletion": row(OK, OK, OK, PENDING_DELETION, OK),
    "CancelKeyDeletion": {
        **row(
            NOT_PENDING_DELETION,
            NOT_PENDING_DELETION,
            NOT_PENDING_DELETION,
            OK,
            NOT_PENDING_DELETION,
        ),
        S.CREATING: NOT_PENDING_DELETION,
        S.UPDATING: NOT_PENDING_DELETION,
    },
    "CreateAlias": EDIT,
    "UpdateAlias": EDIT,  # refused when the target key is pending deletion
    "UpdateKeyDescription": EDIT,
    "TagResource": EDIT,
    "UntagResource": EDIT,
    "PutKeyPolicy": row(OK, OK, OK, OK, OK),
    "CreateGrant": row(OK, DISABLED, PENDING_IMPORT, PENDING_DELETION, OK),
    "EnableKeyRotation": ROTATION,
    "DisableKeyRotation": ROTATION,
    # Not in the guide's table; read like the other rotation operations where state decides.
    "RotateKeyOnDemand": row(ORIGIN, DISABLED, UNDOCUMENTED, PENDING_DELETION, UNDOCUMENTED),
    "GetKeyRotationStatus": row(ORIGIN, ORIGIN, EXTERNAL_ORIGIN, ORIGIN, ORIGIN),
    "GetParametersForImport": IMPORT,
    "ImportKeyMaterial": IMPORT,
    "DeleteImportedKeyMaterial": row(ORIGIN, ORIGIN, OK, REFUSED, ORIGIN),
    "DescribeKey": always_allowed_row(),
    "GetKeyPolicy": always_allowed_row(),
    "DeleteAlias": always_allowed_row(),
    "ListResourceTags": always_allowed_row(),
    "ListGrants": row(OK, OK, OK, OK, OK),
    "ListKeyPolicies": row(OK, OK, OK, OK, OK),
    "RetireGrant": row(OK, OK, OK, OK, OK),
    "RevokeGrant": row(OK, OK, OK, OK, OK),
}


CASES = [
    pytest.param(operation, state, cells[state], id=f"{operation}-{state.value}")
    for operation, cells in GUIDE.items()
    for state in KeyState
]


def test_the_guide_table_covers_every_gated_operation() -> None:
    assert set(ALLOWED) <= set(GUIDE)
    assert set(CRYPTO_OPS) == set(CRYPTO)


def test_key_states_are_spelled_as_aws_spells_them() -> None:
    assert {state.value for state in KeyState} == {
        "Creating",
        "Enabled",
        "Disabled",
        "PendingDeletion",
        "PendingImport",
        "PendingReplicaDeletion",
        "Unavailable",
        "Updating",
    }


@pytest.mark.parametrize(("operation", "state", "cell"), CASES)
def test_refusal_matches_the_guide(operation: str, state: KeyState, cell: Cell) -> None:
    error = refusal(state, operation, ARN)
    match cell:
        case Allowed():
            assert error is None
        case Refused(error=expected, message=message):
            assert error is not None, f"{operation} on a key in {state.value} must be refused"
            if expected is not None:
                assert type(error) is expected
            if message is not None:
                assert error.message == f"{ARN} {message}"
            assert error.message.startswith(f"{ARN} ")
        case OriginDecides(message=message):
            if error is not None:
                assert type(error) is UnsupportedOperationException, (
                    f"AWS answers {operation} on a key in {state.value} from its origin or key"
                    f" store, never with {type(error).__name__}"
                )
                if message is not None:
                    assert error.message == f"{ARN} {message}"
        case Undocumented():
            if error is not None:
                assert error.message.startswith(f"{ARN} ")
                assert error.message.endswith(".")


@pytest.mark.parametrize(("operation", "state", "cell"), CASES)
def test_check_raises_what_refusal_returns(operation: str, state: KeyState, cell: Cell) -> None:
    expected = refusal(state, operation, ARN)
    if expected is None:
        check(state, operation, ARN)
        return
    with pytest.raises(KmsError) as raised:
        check(state, operation, ARN)
    assert type(raised.value) is type(expected)
    assert raised.value.message == expected.message


def test_refusals_name_the_key_they_were_given() -> None:
    other = "arn:aws:kms:eu-west-1:444455556666:key/mrk-1234abcd12ab34cd56ef1234567890ab"
    error = refusal(S.DISABLED, "Encrypt", other)
    assert isinstance(error, DisabledException)
    assert error.message == f"{other} is disabled."


@pytest.mark.parametrize(
    ("operation", "before", "after"),
    [
        ("EnableKey", S.ENABLED, S.ENABLED),
        ("EnableKey", S.DISABLED, S.ENABLED),
        ("DisableKey", S.ENABLED, S.DISABLED),
        ("DisableKey", S.DISABLED, S.DISABLED),
        ("ScheduleKeyDeletion", S.ENABLED, S.PENDING_DELETION),
        ("ScheduleKeyDeletion", S.DISABLED, S.PENDING_DELETION),
        ("ScheduleKeyDeletion", S.PENDING_IMPORT, S.PENDING_DELETION),
        ("ScheduleKeyDeletion", S.UNAVAILABLE, S.PENDING_DELETION),
        # AWS: "When this operation succeeds, the key state of the KMS key is Disabled."
        ("CancelKeyDeletion", S.PENDING_DELETION, S.DISABLED),
        # The guide: on an Unavailable key these succeed, but the state does not change.
        ("EnableKey", S.UNAVAILABLE, S.UNAVAILABLE),
        ("DisableKey", S.UNAVAILABLE, S.UNAVAILABLE),
        # Operations that are not lifecycle operations leave the state alone.
        ("Encrypt", S.ENABLED, S.ENABLED),
        ("TagResource", S.DISABLED, S.DISABLED),
        ("DescribeKey", S.PENDING_DELETION, S.PENDING_DELETION),
    ],
    ids=lambda value: value.value if isinstance(value, KeyState) else str(value),
)
def test_transition(operation: str, before: KeyState, after: KeyState) -> None:
    assert next_state(before, operation, ARN) is after


@pytest.mark.parametrize(
    ("operation", "state", "error", "message"),
    [
        ("EnableKey", S.PENDING_DELETION, KMSInvalidStateException, "is pending deletion."),
        ("EnableKey", S.PENDING_IMPORT, KMSInvalidStateException, "is pending import."),
        ("DisableKey", S.PENDING_DELETION, KMSInvalidStateException, "is pending deletion."),
        (
            "ScheduleKeyDeletion",
            S.PENDING_DELETION,
            KMSInvalidStateException,
            "is pending deletion.",
        ),
        ("CancelKeyDeletion", S.ENABLED, KMSInvalidStateException, "is not pending deletion."),
        ("CancelKeyDeletion", S.DISABLED, KMSInvalidStateException, "is not pending deletion."),
    ],
)
def test_refused_transition_raises_and_names_the_key(
    operation: str, state: KeyState, error: type[KmsError], message: str
) -> None:
    with pytest.raises(error) as raised:
        next_state(state, operation, ARN)
    assert type(raised.value) is error
    assert raised.value.message == f"{ARN} {message}"


def test_transitions_only_lead_to_states_aws_documents() -> None:
    # CancelKeyDeletion always lands in Disabled and ScheduleKeyDeletion in PendingDeletion.
    for (operation, _before), after in TRANSITIONS.items():
        if operation == "CancelKeyDeletion":
            assert after is S.DISABLED
        if operation == "ScheduleKeyDeletion":
            assert after is S.PENDING_DELETION
