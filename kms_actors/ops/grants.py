"""Grant operations: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.

The key actor owns its grants (``kms_actors.keys.grants.GrantBook``) and decides, serially
with every other change of the key, so a RevokeGrant that has returned governs every later
request. ListRetirableGrants spans keys, so it reads the store, where every grant change has
committed before it was answered.
"""

from __future__ import annotations

from typing import Any

import msgspec

from kms_actors.domain.grants import (
    check_principal,
    check_tokens,
    decode_marker,
    decode_token,
    encode_marker,
)
from kms_actors.domain.identifiers import key_arn
from kms_actors.domain.policy import identify
from kms_actors.domain.principal import Caller
from kms_actors.domain.records import GrantRecord
from kms_actors.errors import (
    AccessDeniedException,
    DryRunOperationException,
    UnsupportedOperationException,
    ValidationException,
)
from kms_actors.keys import messages as m
from kms_actors.ops._context import (
    Handler,
    Services,
    auth,
    check_identity_permission,
    given,
    or_default,
)
from kms_actors.wire import shapes as w

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

_DRY_RUN = "The request would have succeeded, but the DryRun option is set."


def grant_entry(record: GrantRecord, region: str) -> w.GrantListEntry:
    """Return a grant as ListGrants and ListRetirableGrants show it (KeyId is the key ARN)."""
    issuer = record.issuing_account.split(":")  # arn:<partition>:iam::<account>:root
    constraints: w.GrantConstraints | msgspec.UnsetType = msgspec.UNSET
    if record.encryption_context_equals:
        constraints = w.GrantConstraints(encryption_context_equals=record.encryption_context_equals)
    elif record.encryption_context_subset:
        constraints = w.GrantConstraints(encryption_context_subset=record.encryption_context_subset)
    return w.GrantListEntry(
        key_id=key_arn(region, issuer[4], record.key_id, issuer[1]),
        grant_id=record.grant_id,
        name=record.name or msgspec.UNSET,
        creation_date=record.creation_date,
        grantee_principal=record.grantee_principal,
        retiring_principal=record.retiring_principal or msgspec.UNSET,
        issuing_account=record.issuing_account,
        operations=list(record.operations),
        constraints=constraints,
    )


def _refuse_service_principals(*values: Any) -> None:
    if any(given(value) for value in values):
        raise UnsupportedOperationException(
            "Grants for AWS service principals (and the SourceArn constraint) are not "
            "supported by kms_actors."
        )


def _create_grant_auth(caller: Caller, req: w.CreateGrantRequest, message: m.CreateGrant) -> m.Auth:
    """Return CreateGrant's Auth, with the grant condition keys key policies may test."""
    keys: dict[str, Any] = {
        "kms:GranteePrincipal": message.grantee_principal,
        "kms:GrantOperations": list(message.operations),
        "kms:GrantIsForAWSResource": False,
    }
    if message.retiring_principal:
        keys["kms:RetiringPrincipal"] = message.retiring_principal
    if message.encryption_context_equals:
        keys["kms:GrantConstraintType"] = "EncryptionContextEquals"
    elif message.encryption_context_subset:
        keys["kms:GrantConstraintType"] = "EncryptionContextSubset"
    return auth(caller, "CreateGrant", req, condition_keys=keys)


async def create_grant(
    s: Services, caller: Caller, req: w.CreateGrantRequest
) -> w.CreateGrantResponse:
    """CreateGrant: effective as soon as it returns; Name makes retries idempotent.

    Raises:
        ValidationException: No GranteePrincipal, an invalid principal, operations the key does
            not support, or invalid constraints.
        InvalidGrantTokenException: A grant token is malformed.
        LimitExceededException: The key has 50,000 grants.
        UnsupportedOperationException: Service principals or a SourceArn constraint.
        DryRunOperationException: DryRun was set and the request would have succeeded.
        NotFoundException, DisabledException, KMSInvalidStateException, AccessDeniedException:
            As AWS.
    """
    constraints = or_default(req.constraints, None)
    source_arn = constraints.source_arn if constraints is not None else None
    _refuse_service_principals(
        req.grantee_service_principal, req.retiring_service_principal, source_arn
    )
    if not isinstance(req.grantee_principal, str):
        raise ValidationException("GranteePrincipal must be specified.")
    check_tokens(or_default(req.grant_tokens, ()))
    message = m.CreateGrant(
        grantee_principal=req.grantee_principal,
        retiring_principal=or_default(req.retiring_principal, None),
        operations=tuple(req.operations),
        encryption_context_equals=(
            or_default(constraints.encryption_context_equals, None) if constraints else None
        ),
        encryption_context_subset=(
            or_default(constraints.encryption_context_subset, None) if constraints else None
        ),
        name=or_default(req.name, None),
    )
    grant_auth = _create_grant_auth(caller, req, message)
    if req.dry_run is True:
        await s.registry.ask(caller, req.key_id, m.Describe(), auth=grant_auth)
        raise DryRunOperationException(_DRY_RUN)
    grant_id, token = await s.registry.ask(caller, req.key_id, message, auth=grant_auth)
    return w.CreateGrantResponse(grant_token=token, grant_id=grant_id)


async def list_grants(
    s: Services, caller: Caller, req: w.ListGrantsRequest
) -> w.ListGrantsResponse:
    """ListGrants: the key's grants in creation order, paged with Limit (1-100) and Marker.

    Raises:
        InvalidMarkerException: The marker is not one this service gave out.
        NotFoundException, AccessDeniedException: As AWS.
    """
    if given(req.grantee_service_principal):
        return w.ListGrantsResponse(grants=[], truncated=False)  # no such grants here
    message = m.ListGrants(
        limit=min(or_default(req.limit, DEFAULT_LIMIT), MAX_LIMIT),
        marker=or_default(req.marker, None),
        grant_id=or_default(req.grant_id, None),
        grantee_principal=or_default(req.grantee_principal, None),
    )
    records, marker = await s.registry.ask(
        caller, req.key_id, message, auth=auth(caller, "ListGrants")
    )
    entries = [grant_entry(record, caller.region) for record in records]
    if marker is None:
        return w.ListGrantsResponse(grants=entries, truncated=False)
    return w.ListGrantsResponse(grants=entries, truncated=True, next_marker=marker)


async def list_retirable_grants(
    s: Services, caller: Caller, req: w.ListRetirableGrantsRequest
) -> w.ListGrantsResponse:
    """ListRetirableGrants: grants on keys of any account in this Region whose retiring
    principal is the given principal of the caller's account.

    Raises:
        ValidationException: No RetiringPrincipal, or not a principal ARN.
        AccessDeniedException: No identity policy allows kms:ListRetirableGrants, or the
            principal is not of the caller's account.
        InvalidMarkerException: The marker is not one this service gave out.
    """
    check_identity_permission(caller, "ListRetirableGrants")
    principal = req.retiring_principal
    if not isinstance(principal, str):
        if given(req.retiring_service_principal):
            return w.ListGrantsResponse(grants=[], truncated=False)  # no such grants here
        raise ValidationException("RetiringPrincipal must be specified.")
    check_principal(principal, "RetiringPrincipal")
    if identify(principal, "").account != caller.account_id:
        raise AccessDeniedException(
            f"User: {caller.arn} is not authorized to perform: kms:ListRetirableGrants for "
            f"the principal {principal}: it is not a principal of account {caller.account_id}"
        )
    limit = min(or_default(req.limit, DEFAULT_LIMIT), MAX_LIMIT)
    after = decode_marker(req.marker) if isinstance(req.marker, str) else None
    records: list[GrantRecord] = await s.registry.deps.store.grants.retirable(
        caller.region, principal, limit=limit + 1, after=after
    )
    entries = [grant_entry(record, caller.region) for record in records[:limit]]
    if len(records) <= limit:
        return w.ListGrantsResponse(grants=entries, truncated=False)
    last = records[limit - 1]
    return w.ListGrantsResponse(
        grants=entries,
        truncated=True,
        next_marker=encode_marker(last.creation_date, last.grant_id),
    )


async def retire_grant(
    s: Services, caller: Caller, req: w.RetireGrantRequest
) -> w.RetireGrantResponse:
    """RetireGrant, by GrantToken or by KeyId (key id or key ARN) and GrantId.

    The grant decides who may retire it (its retiring principal, its grantee if it allows
    RetireGrant, the issuing account); the key policy does not.

    Raises:
        ValidationException: Neither a token nor both KeyId and GrantId; an alias as KeyId.
        InvalidGrantTokenException: The token is malformed.
        InvalidGrantIdException: The grant id is malformed.
        NotFoundException: No such key or grant.
        AccessDeniedException: The caller may not retire the grant.
    """
    if isinstance(req.grant_token, str):
        parts = decode_token(req.grant_token)
        key_param, grant_id = parts.key_arn, parts.grant_id
    elif isinstance(req.key_id, str) and isinstance(req.grant_id, str):
        key_param, grant_id = req.key_id, req.grant_id
        if s.registry.parse(caller, key_param).kind == "alias":
            raise ValidationException(
                "RetireGrant identifies the key by its key ID or key ARN, not by an alias."
            )
    else:
        raise ValidationException("Grant token OR (grant ID, key ID) must be specified.")
    retire_auth = auth(caller, "RetireGrant")
    if req.dry_run is True:
        await s.registry.ask(caller, key_param, m.Describe(), auth=retire_auth)
        raise DryRunOperationException(_DRY_RUN)
    await s.registry.ask(caller, key_param, m.RetireGrant(grant_id), auth=retire_auth)
    return w.RetireGrantResponse()


async def revoke_grant(
    s: Services, caller: Caller, req: w.RevokeGrantRequest
) -> w.RevokeGrantResponse:
    """RevokeGrant: allowed by key policy (kms:RevokeGrant); takes effect when it returns.

    Raises:
        InvalidGrantIdException: The grant id is malformed.
        NotFoundException: No such key or grant.
        DryRunOperationException: DryRun was set and the request would have succeeded.
        AccessDeniedException: As AWS.
    """
    revoke_auth = auth(caller, "RevokeGrant")
    if req.dry_run is True:
        await s.registry.ask(caller, req.key_id, m.Describe(), auth=revoke_auth)
        raise DryRunOperationException(_DRY_RUN)
    await s.registry.ask(caller, req.key_id, m.RevokeGrant(req.grant_id), auth=revoke_auth)
    return w.RevokeGrantResponse()


HANDLERS: dict[str, Handler] = {
    "CreateGrant": create_grant,
    "ListGrants": list_grants,
    "ListRetirableGrants": list_retirable_grants,
    "RetireGrant": retire_grant,
    "RevokeGrant": revoke_grant,
}
