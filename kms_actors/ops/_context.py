"""What every operation handler is given: the services it may use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from kms_actors.domain.clock import Clock
from kms_actors.domain.policy import RequestContext
from kms_actors.domain.principal import Caller
from kms_actors.errors import (
    AccessDeniedException,
    DryRunOperationException,
    InvalidMarkerException,
)
from kms_actors.keys.messages import Auth
from kms_actors.keys.registry import KeyRegistry

Shape = Any  # a kms_actors.wire shape (msgspec Struct)
Handler = Callable[["Services", Caller, Any], Awaitable[Any]]
H = TypeVar("H", bound=Handler)


class Services(msgspec.Struct, kw_only=True):
    """The services operation handlers use."""

    registry: KeyRegistry
    hsm: Any  # kms_actors.hsm.HsmPool
    clock: Clock


def given(value: Any) -> bool:
    """Say whether an optional request member was given."""
    return value is not msgspec.UNSET and value is not None


def or_default(value: Any, default: Any) -> Any:
    """Return an optional member's value, or ``default`` when it was not given."""
    return default if value is msgspec.UNSET or value is None else value


def dry_run_check(request: Any) -> None:
    """Raise AWS's DryRunOperationException when the request asked for a dry run.

    Raises:
        DryRunOperationException: ``DryRun`` was true and the request would have succeeded.
    """
    if getattr(request, "dry_run", msgspec.UNSET) is True:
        raise DryRunOperationException(
            "The request would have succeeded, but the DryRun option is set."
        )


def page(
    items: list[Any], limit: int, marker_of: Callable[[Any], str]
) -> tuple[list[Any], str | None]:
    """Cut ``limit`` items from a list fetched with one extra; return them and the next marker."""
    if len(items) > limit:
        items = items[:limit]
        return items, encode_marker(marker_of(items[-1]))
    return items, None


def encode_marker(value: str) -> str:
    """Return an opaque paging marker for ``value``."""
    import base64

    return base64.urlsafe_b64encode(value.encode()).decode()


def decode_marker(marker: Any) -> str | None:
    """Return the value an opaque marker stands for, or None when there is no marker.

    Raises:
        InvalidMarkerException: The marker was not produced by this service.
    """
    if not given(marker):
        return None
    import base64
    import binascii

    try:
        return base64.urlsafe_b64decode(str(marker).encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidMarkerException("Invalid marker") from None


def auth(caller: Caller, operation: str, request: Any = None, **extra: Any) -> Auth:
    """Return the Auth of a key operation (grant tokens taken from the request, if any)."""
    tokens = getattr(request, "grant_tokens", msgspec.UNSET) if request is not None else None
    return Auth(
        caller=caller,
        operation=operation,
        grant_tokens=tuple(or_default(tokens, ())),
        **extra,
    )


def check_identity_permission(caller: Caller, operation: str) -> None:
    """Check an operation that no key policy governs (CreateKey, ListKeys, ...) against IAM.

    The account root may do everything in its account; any other principal needs an identity
    policy that allows ``kms:<operation>`` and none that denies it.

    Raises:
        AccessDeniedException: No identity policy allows it, or one denies it.
    """
    if caller.is_root:
        return
    ctx = RequestContext(
        principal_arn=caller.arn,
        principal_account=caller.account_id,
        action=f"kms:{operation}",
        resource="*",
        keys={"kms:CallerAccount": caller.account_id},
        role_arn=caller.role_arn,
    )
    verdicts = [policy.evaluate(ctx) for policy in caller.identity_policies]
    if "Deny" in verdicts:
        reason = "with an explicit deny in an identity-based policy"
    elif "Allow" in verdicts:
        return
    else:
        reason = f"because no identity-based policy allows the kms:{operation} action"
    raise AccessDeniedException(
        f"User: {caller.arn} is not authorized to perform: kms:{operation} on resource: * " + reason
    )
