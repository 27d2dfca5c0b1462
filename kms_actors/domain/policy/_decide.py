"""AWS's authorization decision for a KMS key: key policy plus identity policies.

1. An explicit Deny in the key policy, or in any identity policy, denies.
2. Same account: allowed when the key policy allows the principal itself; or when it names
   the principal's account (the key policy "enables IAM policies") and an identity policy
   allows. The account root is named by its account, so it needs no identity policy.
3. Another account: the key policy must allow (naming the account or the principal) and an
   identity policy in the caller's account must allow too; that account's root needs none.
4. A service principal is allowed only by the key policy.

Grants are the other way in and are decided elsewhere; an explicit deny here (``via ==
"deny"``) overrides them, an implicit one (``via == "none"``) does not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, Literal

import msgspec

from kms_actors.domain.policy._context import RequestContext
from kms_actors.domain.policy._policy import Policy
from kms_actors.errors import MalformedPolicyDocumentException

LOCKOUT_MESSAGE: Final = (
    "The new key policy will not allow you to update the key policy in the future."
)
_ACCOUNT_ID: Final = re.compile(r"\d{12}")

Via = Literal["key-policy", "identity-policy", "deny", "none"]


class Decision(msgspec.Struct, frozen=True):
    """The outcome of authorizing one request.

    ``reason`` completes AWS's AccessDenied sentence when denied ("with an explicit deny in a
    resource-based policy", "because no identity-based policy allows the kms:Encrypt
    action"...) and says what allowed the request otherwise. ``via`` is "key-policy" or
    "identity-policy" for an allowed request, "deny" for an explicit deny and "none" when
    nothing allowed it.
    """

    allowed: bool
    reason: str
    via: Via


_KEY_POLICY_DENY: Final = Decision(
    False, "with an explicit deny in a resource-based policy", "deny"
)
_IDENTITY_DENY: Final = Decision(False, "with an explicit deny in an identity-based policy", "deny")
_BY_KEY_POLICY: Final = Decision(True, "allowed by the key policy", "key-policy")
_BY_IDENTITY: Final = Decision(
    True,
    "allowed by an identity-based policy; the key policy allows the account",
    "identity-policy",
)
_BY_BOTH: Final = Decision(
    True,
    "allowed by the key policy and by an identity-based policy of the caller's account",
    "identity-policy",
)


def decide(
    ctx: RequestContext,
    key_policy: Policy,
    identity_policies: Sequence[Policy] = (),
    *,
    same_account: bool | None = None,
) -> Decision:
    """Decide a request as AWS does for a KMS key (grants aside).

    ``identity_policies`` are the caller's IAM policies (its user's, or its role's for a
    session). ``same_account`` defaults to comparing the caller's account with the account
    in the resource ARN.
    """
    # Stopping at the first direct Allow is safe: delegation only matters without one.
    key = key_policy._assess(ctx, complete=False)
    if key.deny:
        return _KEY_POLICY_DENY
    identity_allows = False
    for policy in identity_policies:
        verdict = policy.evaluate(ctx)
        if verdict == "Deny":
            return _IDENTITY_DENY
        identity_allows = identity_allows or verdict == "Allow"
    who = ctx.caller
    if who.kind == "service":
        return _BY_KEY_POLICY if key.allow else _implicit(ctx, "resource")
    if same_account is None:
        owner = resource_account(ctx.resource)
        same_account = owner is None or owner == who.account
    if same_account:
        if key.allow:
            return _BY_KEY_POLICY
        if not key.delegates:
            return _implicit(ctx, "resource")
        return _BY_IDENTITY if identity_allows else _implicit(ctx, "identity")
    if not (key.allow or key.delegates):
        return _implicit(ctx, "resource")
    if who.kind == "root":
        return _BY_KEY_POLICY
    return _BY_BOTH if identity_allows else _implicit(ctx, "identity")


def _implicit(ctx: RequestContext, kind: Literal["resource", "identity"]) -> Decision:
    return Decision(False, f"because no {kind}-based policy allows the {ctx.action} action", "none")


def resource_account(resource: str) -> str | None:
    """Return the account id in an ARN, or None when ``resource`` names no account."""
    parts = resource.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and _ACCOUNT_ID.fullmatch(parts[4]):
        return parts[4]
    return None


def access_denied_message(ctx: RequestContext, decision: Decision) -> str:
    """Return AWS's AccessDeniedException message for a denied request.

    For example: ``User: arn:aws:iam::111122223333:user/dev is not authorized to perform:
    kms:Encrypt on resource: arn:aws:kms:...:key/... because no resource-based policy allows
    the kms:Encrypt action``.

    Raises:
        ValueError: ``decision`` allows the request.
    """
    if decision.allowed:
        raise ValueError("the decision allows the request: there is nothing to refuse")
    return (
        f"User: {ctx.principal_arn} is not authorized to perform: {ctx.action} "
        f"on resource: {ctx.resource} {decision.reason}"
    )


def lockout_check(
    new_policy: Policy, ctx_for_put: RequestContext, identity_policies: Sequence[Policy] = ()
) -> None:
    """Apply AWS's policy lockout safety check (CreateKey and PutKeyPolicy).

    The caller must still be allowed kms:PutKeyPolicy on the key under ``new_policy`` and
    its identity policies; ``ctx_for_put`` is the caller's request context (its action is
    taken as kms:PutKeyPolicy).

    Raises:
        MalformedPolicyDocumentException: The new policy would lock the caller out.
    """
    ctx = ctx_for_put
    if ctx.action != "kms:PutKeyPolicy":
        ctx = msgspec.structs.replace(ctx, action="kms:PutKeyPolicy")
    if not decide(ctx, new_policy, identity_policies).allowed:
        raise MalformedPolicyDocumentException(LOCKOUT_MESSAGE)


def default_key_policy(account_id: str, partition: str = "aws") -> str:
    """Return the key policy AWS attaches when CreateKey is given none, as GetKeyPolicy shows it.

    It gives the account (its root user, and through IAM policies its other principals)
    every KMS permission on the key.
    """
    return (
        "{\n"
        '  "Version" : "2012-10-17",\n'
        '  "Id" : "key-default-1",\n'
        '  "Statement" : [ {\n'
        '    "Sid" : "Enable IAM User Permissions",\n'
        '    "Effect" : "Allow",\n'
        '    "Principal" : {\n'
        f'      "AWS" : "arn:{partition}:iam::{account_id}:root"\n'
        "    },\n"
        '    "Action" : "kms:*",\n'
        '    "Resource" : "*"\n'
        "  } ]\n"
        "}"
    )
