"""Key lifecycle operations: CreateKey, DescribeKey, ListKeys, Enable/Disable, deletion."""

from __future__ import annotations

import msgspec

from kms_actors.domain.policy import RequestContext, compile_policy, lockout_check
from kms_actors.domain.principal import Caller
from kms_actors.domain.records import KeyRecord
from kms_actors.errors import (
    CustomKeyStoreNotFoundException,
    InvalidMarkerException,
    UnsupportedOperationException,
    ValidationException,
)
from kms_actors.keys import messages as m
from kms_actors.keys._commands import NewKey
from kms_actors.keys.actor import check_tags
from kms_actors.keys.registry import note_resources
from kms_actors.ops._context import (
    Handler,
    Services,
    auth,
    check_identity_permission,
    decode_marker,
    given,
    or_default,
    page,
)
from kms_actors.wire import shapes as w

SYMMETRIC = "SYMMETRIC_DEFAULT"


def key_metadata(key: KeyRecord) -> w.KeyMetadata:
    """Return DescribeKey's KeyMetadata for a key, as AWS shows it."""
    pending = key.key_state == "PendingDeletion"
    return w.KeyMetadata(
        aws_account_id=key.account_id,
        key_id=key.key_id,
        arn=key.arn,
        creation_date=key.creation_date,
        enabled=key.key_state == "Enabled",
        description=key.description,
        key_usage=key.key_usage,
        key_state=key.key_state,
        deletion_date=key.deletion_date if pending and key.deletion_date else msgspec.UNSET,
        origin=key.origin,
        key_manager=key.key_manager,
        customer_master_key_spec=key.key_spec,
        key_spec=key.key_spec,
        encryption_algorithms=[SYMMETRIC],
        multi_region=key.multi_region,
    )


async def create_key(s: Services, caller: Caller, req: w.CreateKeyRequest) -> w.CreateKeyResponse:
    """CreateKey.

    Raises:
        LimitExceededException: The account's customer managed key quota is reached.
        MalformedPolicyDocumentException: The policy is malformed, or would lock the caller
            out (unless BypassPolicyLockoutSafetyCheck).
        AccessDeniedException: No identity policy allows kms:CreateKey.
        UnsupportedOperationException: A key spec, origin or option not supported yet.
        CustomKeyStoreNotFoundException: A custom key store was named.
        ValidationException: KeySpec and CustomerMasterKeySpec disagree, or the usage does not
            fit the spec.
    """
    spec = or_default(req.key_spec, None)
    legacy_spec = or_default(req.customer_master_key_spec, None)
    if spec is not None and legacy_spec is not None:
        raise ValidationException(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. "
            "CustomerMasterKeySpec parameter is deprecated. Use KeySpec parameter instead."
        )
    spec = spec or legacy_spec or SYMMETRIC
    usage = or_default(req.key_usage, "ENCRYPT_DECRYPT")
    if spec != SYMMETRIC:
        raise UnsupportedOperationException(f"KeySpec {spec} is not supported by this service yet.")
    if usage != "ENCRYPT_DECRYPT":
        raise ValidationException(f"KeyUsage {usage} is not compatible with KeySpec {spec}")
    origin = or_default(req.origin, "AWS_KMS")
    if origin != "AWS_KMS":
        raise UnsupportedOperationException(
            f"Origin {origin} is not supported by this service yet."
        )
    if given(req.custom_key_store_id):
        raise CustomKeyStoreNotFoundException(
            f"Custom key store {req.custom_key_store_id} does not exist."
        )
    if req.multi_region is True:
        raise UnsupportedOperationException(
            "Multi-Region keys are not supported by this service yet."
        )
    check_identity_permission(caller, "CreateKey")
    policy = or_default(req.policy, None)
    if policy is not None:
        compiled = compile_policy(policy)
        if req.bypass_policy_lockout_safety_check is not True:
            lockout_check(
                compiled,
                RequestContext(
                    principal_arn=caller.arn,
                    principal_account=caller.account_id,
                    action="kms:PutKeyPolicy",
                    resource="*",
                    keys={"kms:CallerAccount": caller.account_id},
                    role_arn=caller.role_arn,
                ),
                caller.identity_policies,
            )
    tags = tuple((t.tag_key, t.tag_value) for t in or_default(req.tags, []))
    check_tags(tags, len(dict(tags)))
    key = await s.registry.command(
        NewKey(caller=caller, description=or_default(req.description, ""), policy=policy, tags=tags)
    )
    note_resources(key.arn)
    return w.CreateKeyResponse(key_metadata=key_metadata(key))


async def describe_key(
    s: Services, caller: Caller, req: w.DescribeKeyRequest
) -> w.DescribeKeyResponse:
    """DescribeKey (an ``alias/aws/<service>`` creates the AWS managed key on first use).

    Raises:
        NotFoundException: No such key or alias.
    """
    key: KeyRecord = await s.registry.ask(
        caller, req.key_id, m.Describe(), auth=auth(caller, "DescribeKey", req)
    )
    return w.DescribeKeyResponse(key_metadata=key_metadata(key))


async def list_keys(s: Services, caller: Caller, req: w.ListKeysRequest) -> w.ListKeysResponse:
    """ListKeys, paged with Limit (1-1000, default 100) and Marker.

    Raises:
        InvalidMarkerException: The marker is not one this service gave out.
    """
    check_identity_permission(caller, "ListKeys")
    limit = or_default(req.limit, 100)
    after = decode_marker(req.marker)
    try:
        keys = await s.registry.list_keys(caller, limit=limit + 1, after=after)
    except KeyError:
        raise InvalidMarkerException("Invalid marker") from None
    items, marker = page(keys, limit, lambda k: k.key_id)
    entries = [w.KeyListEntry(key_id=k.key_id, key_arn=k.arn) for k in items]
    if marker is None:
        return w.ListKeysResponse(keys=entries, truncated=False)
    return w.ListKeysResponse(keys=entries, truncated=True, next_marker=marker)


async def update_key_description(
    s: Services, caller: Caller, req: w.UpdateKeyDescriptionRequest
) -> w.UpdateKeyDescriptionResponse:
    """UpdateKeyDescription.

    Raises:
        NotFoundException, KMSInvalidStateException: As AWS.
    """
    await s.registry.ask(
        caller,
        req.key_id,
        m.UpdateDescription(req.description),
        auth=auth(caller, "UpdateKeyDescription"),
    )
    return w.UpdateKeyDescriptionResponse()


async def enable_key(s: Services, caller: Caller, req: w.EnableKeyRequest) -> w.EnableKeyResponse:
    """EnableKey.

    Raises:
        NotFoundException, KMSInvalidStateException: As AWS.
    """
    await s.registry.ask(caller, req.key_id, m.Enable(), auth=auth(caller, "EnableKey"))
    return w.EnableKeyResponse()


async def disable_key(
    s: Services, caller: Caller, req: w.DisableKeyRequest
) -> w.DisableKeyResponse:
    """DisableKey: once it returns, no crypto request admitted later succeeds.

    Raises:
        NotFoundException, KMSInvalidStateException: As AWS.
    """
    await s.registry.ask(caller, req.key_id, m.Disable(), auth=auth(caller, "DisableKey"))
    return w.DisableKeyResponse()


async def schedule_key_deletion(
    s: Services, caller: Caller, req: w.ScheduleKeyDeletionRequest
) -> w.ScheduleKeyDeletionResponse:
    """ScheduleKeyDeletion with a 7-30 day waiting period (default 30).

    Raises:
        ValidationException: PendingWindowInDays outside 7-30.
        NotFoundException, KMSInvalidStateException: As AWS.
    """
    days = or_default(req.pending_window_in_days, 30)
    if not 7 <= days <= 30:
        raise ValidationException(
            f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to "
            "satisfy constraint: Member must have value "
            + ("greater than or equal to 7" if days < 7 else "less than or equal to 30")
        )
    key: KeyRecord = await s.registry.ask(
        caller, req.key_id, m.ScheduleDeletion(days), auth=auth(caller, "ScheduleKeyDeletion")
    )
    return w.ScheduleKeyDeletionResponse(
        key_id=key.arn,
        deletion_date=key.deletion_date if key.deletion_date is not None else msgspec.UNSET,
        key_state=key.key_state,
        pending_window_in_days=days,
    )


async def cancel_key_deletion(
    s: Services, caller: Caller, req: w.CancelKeyDeletionRequest
) -> w.CancelKeyDeletionResponse:
    """CancelKeyDeletion: the key comes back Disabled.

    Raises:
        NotFoundException, KMSInvalidStateException: As AWS.
    """
    key: KeyRecord = await s.registry.ask(
        caller, req.key_id, m.CancelDeletion(), auth=auth(caller, "CancelKeyDeletion")
    )
    return w.CancelKeyDeletionResponse(key_id=key.arn)


HANDLERS: dict[str, Handler] = {
    "CreateKey": create_key,
    "DescribeKey": describe_key,
    "ListKeys": list_keys,
    "UpdateKeyDescription": update_key_description,
    "EnableKey": enable_key,
    "DisableKey": disable_key,
    "ScheduleKeyDeletion": schedule_key_deletion,
    "CancelKeyDeletion": cancel_key_deletion,
}
