"""The AWS key state machine: states, transitions and which operations each state allows.

The table follows the AWS KMS developer guide ("Key states of AWS KMS keys"). A refusal raises
the exact AWS error type with AWS's message, e.g. ``DisabledException("<key ARN> is
disabled.")``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from kms_actors.errors import (
    DisabledException,
    KeyUnavailableException,
    KmsError,
    KMSInvalidStateException,
)


class KeyState(enum.StrEnum):
    """The eight states of a KMS key, spelled as AWS spells them."""

    CREATING = "Creating"
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PENDING_DELETION = "PendingDeletion"
    PENDING_IMPORT = "PendingImport"
    PENDING_REPLICA_DELETION = "PendingReplicaDeletion"
    UNAVAILABLE = "Unavailable"
    UPDATING = "Updating"


S = KeyState
ALL_STATES: frozenset[KeyState] = frozenset(KeyState)

# Operations that use the key's material ("cryptographic operations").
CRYPTO_OPS: frozenset[str] = frozenset(
    {
        "Encrypt",
        "Decrypt",
        "ReEncryptFrom",
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
    }
)

_EDITABLE = frozenset({S.ENABLED, S.DISABLED, S.PENDING_IMPORT, S.UNAVAILABLE})

# Which states allow each key operation. Operations not listed are allowed in every state.
ALLOWED: Mapping[str, frozenset[KeyState]] = {
    **{op: frozenset({S.ENABLED}) for op in CRYPTO_OPS},
    # On an Unavailable key (custom key store disconnected) these succeed; the new state takes
    # effect when the key store is back.
    "EnableKey": frozenset({S.ENABLED, S.DISABLED, S.UNAVAILABLE}),
    "DisableKey": frozenset({S.ENABLED, S.DISABLED, S.UNAVAILABLE}),
    "ScheduleKeyDeletion": frozenset({S.ENABLED, S.DISABLED, S.PENDING_IMPORT, S.UNAVAILABLE}),
    "CancelKeyDeletion": frozenset({S.PENDING_DELETION}),
    "UpdateKeyDescription": _EDITABLE,
    "TagResource": _EDITABLE,
    "UntagResource": _EDITABLE,
    "CreateAlias": _EDITABLE,
    "UpdateAlias": _EDITABLE,
    "PutKeyPolicy": _EDITABLE | {S.PENDING_DELETION},
    "CreateGrant": frozenset({S.ENABLED, S.UNAVAILABLE}),
    # Rotation and import on PendingImport/Unavailable keys are refused by the key's origin
    # (UnsupportedOperationException), which the operation checks after the state.
    "EnableKeyRotation": frozenset({S.ENABLED, S.PENDING_IMPORT, S.UNAVAILABLE}),
    "DisableKeyRotation": frozenset({S.ENABLED, S.PENDING_IMPORT, S.UNAVAILABLE}),
    "RotateKeyOnDemand": frozenset({S.ENABLED}),
    "GetParametersForImport": frozenset({S.PENDING_IMPORT, S.ENABLED, S.DISABLED, S.UNAVAILABLE}),
    "ImportKeyMaterial": frozenset({S.PENDING_IMPORT, S.ENABLED, S.DISABLED, S.UNAVAILABLE}),
    "DeleteImportedKeyMaterial": frozenset(
        {S.PENDING_IMPORT, S.ENABLED, S.DISABLED, S.UNAVAILABLE}
    ),
}

_STATE_WORDS: Mapping[KeyState, str] = {
    S.CREATING: "is being created",
    S.ENABLED: "is enabled",
    S.DISABLED: "is disabled",
    S.PENDING_DELETION: "is pending deletion",
    S.PENDING_IMPORT: "is pending import",
    S.PENDING_REPLICA_DELETION: "is pending replica deletion",
    S.UNAVAILABLE: "is unavailable",
    S.UPDATING: "is being updated",
}


def allowed_states(operation: str) -> frozenset[KeyState]:
    """Return the states in which ``operation`` may run on a key."""
    return ALLOWED.get(operation, ALL_STATES)


def refusal(state: KeyState, operation: str, key_arn: str) -> KmsError | None:
    """Return the AWS error for running ``operation`` on a key in ``state``, or None if allowed."""
    if state in ALLOWED.get(operation, ALL_STATES):
        return None
    if operation == "CancelKeyDeletion":
        return KMSInvalidStateException(f"{key_arn} is not pending deletion.")
    if state is S.DISABLED:
        return DisabledException(f"{key_arn} is disabled.")
    if state is S.UNAVAILABLE and operation in CRYPTO_OPS:
        return KeyUnavailableException(f"{key_arn} is unavailable.")
    return KMSInvalidStateException(f"{key_arn} {_STATE_WORDS[state]}.")


def check(state: KeyState, operation: str, key_arn: str) -> None:
    """Raise the AWS error if ``operation`` may not run on a key in ``state``.

    Raises:
        DisabledException: The key is disabled.
        KMSInvalidStateException: The key's state does not allow the operation.
        KeyUnavailableException: The key's custom key store is unavailable.
    """
    error = refusal(state, operation, key_arn)
    if error is not None:
        raise error


# Transitions made by the lifecycle operations: (operation, from state) -> to state.
TRANSITIONS: Mapping[tuple[str, KeyState], KeyState] = {
    ("EnableKey", S.ENABLED): S.ENABLED,
    ("EnableKey", S.DISABLED): S.ENABLED,
    ("DisableKey", S.ENABLED): S.DISABLED,
    ("DisableKey", S.DISABLED): S.DISABLED,
    ("ScheduleKeyDeletion", S.ENABLED): S.PENDING_DELETION,
    ("ScheduleKeyDeletion", S.DISABLED): S.PENDING_DELETION,
    ("ScheduleKeyDeletion", S.PENDING_IMPORT): S.PENDING_DELETION,
    ("ScheduleKeyDeletion", S.UNAVAILABLE): S.PENDING_DELETION,
    # AWS leaves a key whose deletion was cancelled Disabled, whatever it was before.
    ("CancelKeyDeletion", S.PENDING_DELETION): S.DISABLED,
}


def transition(state: KeyState, operation: str, key_arn: str) -> KeyState:
    """Return the state after a lifecycle ``operation``, raising the AWS error if refused.

    Raises:
        DisabledException: The key is disabled.
        KMSInvalidStateException: The key's state does not allow the operation.
    """
    check(state, operation, key_arn)
    return TRANSITIONS.get((operation, state), state)
