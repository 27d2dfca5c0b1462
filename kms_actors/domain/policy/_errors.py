"""The errors compiling a policy raises."""

from __future__ import annotations

from typing import Final

from kms_actors.errors import LimitExceededException, MalformedPolicyDocumentException

KEY_POLICY_MAX_BYTES: Final = 32_768
INVALID_PRINCIPALS: Final = "Policy contains a statement with one or more invalid principals."


def malformed(where: str, detail: str, *, aws: str = "") -> MalformedPolicyDocumentException:
    """Return MalformedPolicyDocumentException naming the element at fault.

    ``aws`` is the sentence AWS answers with for this fault, when one is known: it leads the
    message, and the location and detail follow.
    """
    located = f"{where}: {detail}" if where and detail else where or detail
    return MalformedPolicyDocumentException(f"{aws} {located}" if aws else located)


def invalid_principal(where: str, detail: str) -> MalformedPolicyDocumentException:
    """Return AWS's invalid-principals error, with where and why."""
    return malformed(where, detail, aws=INVALID_PRINCIPALS)


def too_large(size: int) -> LimitExceededException:
    """Return the LimitExceededException for a key policy over the size quota."""
    return LimitExceededException(
        f"Policy exceeds the maximum allowed size of {KEY_POLICY_MAX_BYTES} bytes "
        f"(it is {size} bytes)."
    )


def describe(value: object) -> str:
    """Return a short, safe rendering of a JSON value for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
