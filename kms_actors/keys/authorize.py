"""Authorization of one request by the key actor: key policy, identity policies, grants.

The actor decides serially with its state changes, so a PutKeyPolicy or RevokeGrant that has
returned governs every later request. The policy is compiled once per change; a decision
costs a few microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kms_actors.domain.grants import CONTEXT_OPERATIONS
from kms_actors.domain.policy import (
    Decision,
    Policy,
    RequestContext,
    access_denied_message,
    decide,
    encryption_context_keys,
)
from kms_actors.domain.records import KeyRecord, TagRecord
from kms_actors.errors import AccessDeniedException
from kms_actors.keys.grants import GrantBook
from kms_actors.keys.messages import Auth


def request_context(
    auth: Auth, key: KeyRecord, tags: Sequence[TagRecord], now: float
) -> RequestContext:
    """Return the policy evaluation context of ``auth`` on ``key``."""
    caller = auth.caller
    keys: dict[str, Any] = {
        "kms:CallerAccount": caller.account_id,
        "kms:KeySpec": key.key_spec,
        "kms:KeyUsage": key.key_usage,
        "kms:KeyOrigin": key.origin,
        "kms:KeyManager": key.key_manager,
        "kms:MultiRegion": key.multi_region,
    }
    if caller.source_ip:
        keys["aws:SourceIp"] = caller.source_ip
    if auth.operation in CONTEXT_OPERATIONS:
        keys.update(encryption_context_keys(auth.encryption_context))
        keys["kms:EncryptionAlgorithm"] = "SYMMETRIC_DEFAULT"
    if auth.request_alias:
        keys["kms:RequestAlias"] = auth.request_alias
    for tag in tags:
        keys[f"aws:ResourceTag/{tag.tag_key}"] = tag.tag_value
    if auth.condition_keys:
        keys.update(auth.condition_keys)
    return RequestContext(
        principal_arn=caller.arn,
        principal_account=caller.account_id,
        action=f"kms:{auth.operation}",
        resource=key.arn,
        keys=keys,
        role_arn=caller.role_arn,
        request_time=now,
    )


class Authorizer:
    """Decides requests on one key; remembers decisions that cannot depend on the request.

    When neither the key policy nor the caller's identity policies have a Condition or a
    policy variable, the decision depends only on (principal, operation), so it is computed
    once and reused until the key policy changes (a new Authorizer is made then).
    """

    _MAX_CACHED = 4096

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._static = _unconditional(policy)
        self._decisions: dict[tuple[Any, ...], Decision] = {}

    def authorize(
        self, auth: Auth, key: KeyRecord, grants: GrantBook, tags: Sequence[TagRecord], now: float
    ) -> bool:
        """Allow the request or raise AWS's AccessDeniedException; say if only a grant allowed it.

        Allowed when the key policy (with the caller's identity policies, as AWS evaluates
        them) allows it, or when a grant on the key does; an explicit Deny in a policy wins
        over both.

        Raises:
            AccessDeniedException: Nothing allows the request, or a policy denies it.
        """
        caller = auth.caller
        slot: tuple[Any, ...] | None = None
        if self._static and all(_unconditional(p) for p in caller.identity_policies):
            slot = (
                caller.arn,
                caller.account_id,
                caller.role_arn,
                auth.operation,
                tuple(p.text for p in caller.identity_policies),
            )
            cached = self._decisions.get(slot)
            if cached is not None and cached.allowed:
                return False
        ctx = request_context(auth, key, tags, now)
        decision = decide(ctx, self.policy, caller.identity_policies)
        if slot is not None:
            if len(self._decisions) >= self._MAX_CACHED:
                self._decisions.clear()
            self._decisions[slot] = decision
        if decision.allowed:
            return False
        if decision.via != "deny" and grants.allows(
            caller, auth.operation, auth.encryption_context, auth.grant_tokens
        ):
            return True
        raise AccessDeniedException(access_denied_message(ctx, decision))


_UNCONDITIONAL: dict[str, bool] = {}


def _unconditional(policy: Policy) -> bool:
    """Say whether a policy's decisions ignore the request context (no conditions/variables)."""
    known = _UNCONDITIONAL.get(policy.text)
    if known is None:
        known = "${" not in policy.text and all(not s.conditions for s in policy.statements)
        if len(_UNCONDITIONAL) > 10_000:
            _UNCONDITIONAL.clear()
        _UNCONDITIONAL[policy.text] = known
    return known
