"""The key lifecycle driven at random through ``transition`` and ``check``, against a model.

The model is a few lines of AWS's documented behaviour (AWS KMS Developer Guide, "Key states of
AWS KMS keys"), written without reference to the code under test.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from kms_actors.domain.states import KeyState, check, refusal, transition
from kms_actors.errors import (
    DisabledException,
    KeyUnavailableException,
    KmsError,
    KMSInvalidStateException,
)

ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

Error = tuple[type[KmsError], str]

# What a cryptographic operation answers in each state other than Enabled.
CRYPTO_REFUSAL: dict[str, Error] = {
    "Disabled": (DisabledException, "is disabled."),
    "PendingDeletion": (KMSInvalidStateException, "is pending deletion."),
    "PendingImport": (KMSInvalidStateException, "is pending import."),
    "Unavailable": (KeyUnavailableException, "is unavailable."),
}


def model(state: str, operation: str) -> tuple[str, Error | None]:
    """Return AWS's next state and error for ``operation`` on a key in ``state``."""
    if operation == "CancelKeyDeletion":
        if state == "PendingDeletion":
            return "Disabled", None
        return state, (KMSInvalidStateException, "is not pending deletion.")
    if state == "PendingDeletion":
        return state, (KMSInvalidStateException, "is pending deletion.")
    if operation == "ScheduleKeyDeletion":
        return "PendingDeletion", None
    if operation in {"EnableKey", "DisableKey"}:
        if state == "PendingImport":
            return state, (KMSInvalidStateException, "is pending import.")
        if state == "Unavailable":  # succeeds; the state changes once the key store is back
            return state, None
        return ("Enabled" if operation == "EnableKey" else "Disabled"), None
    if state == "Enabled":
        return state, None
    return state, CRYPTO_REFUSAL[state]


@settings(max_examples=100, stateful_step_count=30, deadline=None)
class KeyLifecycle(RuleBasedStateMachine):
    """One key: ``state`` is moved by the code under test, ``expected`` by the model."""

    def __init__(self) -> None:
        super().__init__()
        self.state = KeyState.ENABLED
        self.expected = "Enabled"
        self.scheduled = False

    # Keys are created Enabled, or PendingImport when their material is imported; a key in a
    # disconnected custom key store is Unavailable.
    @initialize(start=st.sampled_from(["Enabled", "PendingImport", "Unavailable"]))
    def create(self, start: str) -> None:
        self.state = KeyState(start)
        self.expected = start

    def _apply(self, operation: str) -> bool:
        """Run ``operation`` through both; return whether it succeeded."""
        after, error = model(self.expected, operation)
        try:
            self.state = transition(self.state, operation, ARN)
        except KmsError as raised:
            assert error is not None, f"{operation} on {self.expected}: unexpected {raised}"
            assert type(raised) is error[0]
            assert raised.message == f"{ARN} {error[1]}"
            assert self.state.value == self.expected  # a refusal leaves the state alone
            return False
        assert error is None, f"{operation} on {self.expected} must fail with {error[0].__name__}"
        self.expected = after
        return True

    @rule()
    def enable_key(self) -> None:
        self._apply("EnableKey")

    @rule()
    def disable_key(self) -> None:
        self._apply("DisableKey")

    @rule()
    def schedule_key_deletion(self) -> None:
        if self._apply("ScheduleKeyDeletion"):
            self.scheduled = True

    @rule()
    def cancel_key_deletion(self) -> None:
        if self._apply("CancelKeyDeletion"):
            self.scheduled = False
            assert self.state is KeyState.DISABLED

    @rule()
    def encrypt(self) -> None:
        _after, error = model(self.expected, "Encrypt")
        try:
            check(self.state, "Encrypt", ARN)
        except KmsError as raised:
            assert error is not None, f"Encrypt on {self.expected}: unexpected {raised}"
            assert type(raised) is error[0]
            assert raised.message == f"{ARN} {error[1]}"
        else:
            assert error is None, f"Encrypt on {self.expected} must fail"

    @invariant()
    def state_is_one_of_the_eight(self) -> None:
        assert isinstance(self.state, KeyState)
        assert self.state in set(KeyState)
        assert len(KeyState) == 8

    @invariant()
    def state_matches_the_model(self) -> None:
        assert self.state.value == self.expected

    @invariant()
    def pending_deletion_iff_scheduled(self) -> None:
        assert (self.state is KeyState.PENDING_DELETION) == self.scheduled

    @invariant()
    def crypto_only_when_enabled(self) -> None:
        admitted = refusal(self.state, "Decrypt", ARN) is None
        assert admitted == (self.state is KeyState.ENABLED)


TestKeyLifecycle = KeyLifecycle.TestCase
