"""Alias operations: CreateAlias, UpdateAlias, DeleteAlias, ListAliases."""

from __future__ import annotations

from kms_actors.domain.identifiers import (
    ALIAS_PREFIX,
    AWS_ALIAS_PREFIX,
    KeyRef,
    alias_arn,
    key_arn,
)
from kms_actors.domain.principal import Caller
from kms_actors.domain.records import AliasRecord
from kms_actors.errors import (
    InvalidMarkerException,
    NotAuthorizedException,
    ValidationException,
)
from kms_actors.keys import _commands as cmd
from kms_actors.keys.messages import CheckState
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


def _check_alias_name(name: str) -> None:
    """Check an AliasName parameter as AWS does beyond the model's pattern.

    Raises:
        ValidationException: The name does not start with ``alias/``.
        NotAuthorizedException: The name is reserved for AWS managed keys.
    """
    if not name.startswith(ALIAS_PREFIX) or name == ALIAS_PREFIX:
        raise ValidationException(
            'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html'
        )
    if name.startswith(AWS_ALIAS_PREFIX):
        raise NotAuthorizedException("")


def _note_alias(s: Services, caller: Caller, name: str) -> None:
    """Name the alias, and the key it points at now, as the request's audit resources."""
    arns = [alias_arn(caller.region, caller.account_id, name, caller.partition)]
    current = s.registry.aliases.get((caller.account_id, caller.region, name))
    if current is not None:
        arns.append(key_arn(caller.region, caller.account_id, current.target_key_id))
    note_resources(*arns)


def _target(s: Services, caller: Caller, target_key_id: str) -> KeyRef:
    ref = s.registry.parse(caller, target_key_id)
    if ref.kind == "alias":
        raise ValidationException("Aliases must refer to keys. Not aliases")
    return ref


async def create_alias(
    s: Services, caller: Caller, req: w.CreateAliasRequest
) -> w.CreateAliasResponse:
    """CreateAlias: a unique name in the account and Region for a key.

    Raises:
        AlreadyExistsException: The alias exists.
        NotFoundException: The target key does not exist.
        KMSInvalidStateException: The target key is pending deletion.
        ValidationException, NotAuthorizedException: A bad or reserved name.
    """
    _check_alias_name(req.alias_name)
    target = _target(s, caller, req.target_key_id)
    check_identity_permission(caller, "CreateAlias")
    _note_alias(s, caller, req.alias_name)
    alias = await s.registry.command(
        cmd.NewAlias(caller, req.alias_name, target, auth(caller, "CreateAlias"))
    )
    note_resources(key_arn(caller.region, caller.account_id, alias.target_key_id))
    return w.CreateAliasResponse()


async def update_alias(
    s: Services, caller: Caller, req: w.UpdateAliasRequest
) -> w.UpdateAliasResponse:
    """UpdateAlias: point an alias at another key.

    Raises:
        NotFoundException: The alias or key does not exist.
        KMSInvalidStateException: The new key is pending deletion.
    """
    _check_alias_name(req.alias_name)
    target = _target(s, caller, req.target_key_id)
    check_identity_permission(caller, "UpdateAlias")
    _note_alias(s, caller, req.alias_name)
    alias = await s.registry.command(
        cmd.MoveAlias(caller, req.alias_name, target, auth(caller, "UpdateAlias"))
    )
    note_resources(key_arn(caller.region, caller.account_id, alias.target_key_id))
    return w.UpdateAliasResponse()


async def delete_alias(
    s: Services, caller: Caller, req: w.DeleteAliasRequest
) -> w.DeleteAliasResponse:
    """DeleteAlias (the key is not affected).

    Raises:
        NotFoundException: The alias does not exist.
    """
    _check_alias_name(req.alias_name)
    check_identity_permission(caller, "DeleteAlias")
    _note_alias(s, caller, req.alias_name)
    await s.registry.command(cmd.DropAlias(caller, req.alias_name))
    return w.DeleteAliasResponse()


def _entry(caller: Caller, alias: AliasRecord) -> w.AliasListEntry:
    return w.AliasListEntry(
        alias_name=alias.alias_name,
        alias_arn=alias_arn(caller.region, caller.account_id, alias.alias_name, caller.partition),
        target_key_id=alias.target_key_id,
        creation_date=alias.creation_date,
        last_updated_date=alias.last_updated_date,
    )


async def list_aliases(
    s: Services, caller: Caller, req: w.ListAliasesRequest
) -> w.ListAliasesResponse:
    """ListAliases of the account and Region, or of one key; paged with Limit (default 50).

    Raises:
        NotFoundException: KeyId names no key.
        InvalidMarkerException: The marker is not one this service gave out.
    """
    check_identity_permission(caller, "ListAliases")
    aliases = s.registry.list_aliases(caller.account_id, caller.region)
    if given(req.key_id):
        ref = s.registry.parse(caller, str(req.key_id))
        if ref.kind == "alias":
            raise ValidationException("KeyId must be a key ID or key ARN, not an alias.")
        key_id = await s.registry.resolve(caller, ref)
        await s.registry.ask_key(ref, key_id, CheckState("ListAliases"))
        aliases = [a for a in aliases if a.target_key_id == key_id]
    after = decode_marker(req.marker)
    if after is not None:
        if not any(a.alias_name == after for a in aliases):
            raise InvalidMarkerException("Invalid marker")
        aliases = [a for a in aliases if a.alias_name > after]
    limit = or_default(req.limit, 50)
    items, marker = page(aliases, limit, lambda a: a.alias_name)
    entries = [_entry(caller, a) for a in items]
    if marker is None:
        return w.ListAliasesResponse(aliases=entries, truncated=False)
    return w.ListAliasesResponse(aliases=entries, truncated=True, next_marker=marker)


HANDLERS: dict[str, Handler] = {
    "CreateAlias": create_alias,
    "UpdateAlias": update_alias,
    "DeleteAlias": delete_alias,
    "ListAliases": list_aliases,
}
