"""Authorization of one request by the key actor: key policy, identity policies, grants.

The actor decides serially with its state changes, so a PutKeyPolicy or RevokeGrant that has
returned governs every later request. The policy is compiled once per change; a decision
costs a few microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kms_actors.domain.policy import (
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

# Operations KMS does not let grants cover, and which never take a grant's constraints.
_CONTEXT_OPS = frozenset(
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
    if auth.operation in _CONTEXT_OPS:
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


def authorize(
    auth: Auth,
    key: KeyRecord,
    policy: Policy,
    grants: GrantBook,
    tags: Sequence[TagRecord],
    now: float,
) -> None:
    """Allow the request or raise AWS's AccessDeniedException.

    Allowed when the key policy (with the caller's identity policies, as AWS evaluates them)
    allows it, or when a grant on the key does; an explicit Deny in a policy wins over both.

    Raises:
        AccessDeniedException: Nothing allows the request, or a policy denies it explicitly.
    """
    ctx = request_context(auth, key, tags, now)
    decision = decide(ctx, policy, auth.caller.identity_policies)
    if decision.allowed:
        return
    if decision.via != "deny" and grants.allows(
        auth.caller, auth.operation, auth.encryption_context, auth.grant_tokens
    ):
        return
    raise AccessDeniedException(access_denied_message(ctx, decision))
