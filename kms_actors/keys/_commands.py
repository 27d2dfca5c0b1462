"""The registry actor: every change to the registry's maps, one message at a time."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec

from kms_actors.domain.identifiers import (
    AWS_ALIAS_PREFIX,
    KeyRef,
    alias_arn,
    key_arn,
    key_not_found,
    new_key_id,
)
from kms_actors.domain.principal import Caller
from kms_actors.domain.records import AliasRecord, KeyRecord, MaterialRecord, TagRecord
from kms_actors.errors import (
    AlreadyExistsException,
    LimitExceededException,
    NotFoundException,
)
from kms_actors.keys.loading import build_actor, load_actor
from kms_actors.keys.messages import Auth, Authorized, CheckState, Purge
from kms_actors.runtime import Stop

if TYPE_CHECKING:
    from kms_actors.keys.registry import KeyRegistry, _Live

# Services whose AWS managed keys (alias/aws/<service>) are created on first use.
AWS_SERVICES = frozenset(
    {
        "acm", "backup", "cloudtrail", "codecommit", "dynamodb", "ebs", "elasticfilesystem",
        "es", "fsx", "glue", "kafka", "kinesis", "kinesisvideo", "lambda", "lightsail", "rds",
        "redshift", "s3", "secretsmanager", "sns", "sqs", "ssm", "xray",
    }
)  # fmt: skip


def is_aws_managed_alias(alias_name: str) -> bool:
    """Say whether ``alias_name`` is a predefined AWS managed alias KMS creates on first use."""
    return (
        alias_name.startswith(AWS_ALIAS_PREFIX)
        and alias_name[len(AWS_ALIAS_PREFIX) :] in AWS_SERVICES
    )


def default_policy(partition: str, account_id: str) -> str:
    """Return AWS's default key policy: the account root may do everything."""
    return msgspec.json.encode(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    ).decode()


# --- messages -----------------------------------------------------------------------------------


class Spawn(msgspec.Struct, frozen=True):
    """Start the actor of ``key_id`` unless it is running; answer its _Live entry."""

    key_id: str
    ref: KeyRef


class NewKey(msgspec.Struct, frozen=True, kw_only=True):
    """Create a key (CreateKey, or an AWS managed key)."""

    caller: Caller
    description: str = ""
    key_manager: str = "CUSTOMER"
    policy: str | None = None
    tags: tuple[tuple[str, str], ...] = ()


class EnsureAwsManagedKey(msgspec.Struct, frozen=True):
    """Create the AWS managed key an ``alias/aws/<service>`` names, unless it exists."""

    caller: Caller
    ref: KeyRef


class NewAlias(msgspec.Struct, frozen=True):
    """CreateAlias (``auth`` is checked against the target key's policy)."""

    caller: Caller
    alias_name: str
    target: KeyRef
    auth: Auth | None = None


class MoveAlias(msgspec.Struct, frozen=True):
    """UpdateAlias (``auth`` is checked against the new target key's policy)."""

    caller: Caller
    alias_name: str
    target: KeyRef
    auth: Auth | None = None


class DropAlias(msgspec.Struct, frozen=True):
    """DeleteAlias."""

    caller: Caller
    alias_name: str


class PurgeKey(msgspec.Struct, frozen=True):
    """A key's deletion date has passed: delete it if it is still pending deletion."""

    key_id: str


RegistryMessage = Spawn | NewKey | EnsureAwsManagedKey | NewAlias | MoveAlias | DropAlias | PurgeKey

_SERVICE_NAME = re.compile(r"[a-z0-9-]+")


class RegistryActor:
    """Handles the registry's mutations; the registry's maps are written only here."""

    def __init__(self, registry: KeyRegistry) -> None:
        self.r = registry

    async def handle(self, message: RegistryMessage) -> Any:
        """Handle one registry message."""
        match message:
            case Spawn(key_id=key_id, ref=ref):
                return await self._spawn(key_id, ref)
            case NewKey():
                return await self._new_key(message)
            case EnsureAwsManagedKey(caller=caller, ref=ref):
                return await self._ensure_aws_managed(caller, ref)
            case NewAlias(caller=caller, alias_name=name, target=target, auth=auth):
                return await self._new_alias(caller, name, target, auth)
            case MoveAlias(caller=caller, alias_name=name, target=target, auth=auth):
                return await self._move_alias(caller, name, target, auth)
            case DropAlias(caller=caller, alias_name=name):
                return await self._drop_alias(caller, name)
            case PurgeKey(key_id=key_id):
                return await self._purge(key_id)

    # --- actors -------------------------------------------------------------------------------

    async def _spawn(self, key_id: str, ref: KeyRef) -> _Live:
        from kms_actors.keys.registry import _Live

        live = self.r.live.get(key_id)
        if live is not None:
            return live
        deps = self.r.deps
        actor = await load_actor_or_none(deps, key_id)
        if actor is None:
            raise key_not_found(ref)
        for material_id in actor.material_ids():
            self.r.material_index[material_id] = key_id
        first = [actor]

        async def factory(attempt: int) -> Any:
            if attempt == 0 and first:
                return first.pop()
            return await load_actor(deps, key_id)

        live = _Live(
            self.r.supervisor.spawn(key_id, factory, on_exit=self.r.on_key_exit),
            actor.key.account_id,
            actor.key.region,
            key_id,
        )
        self.r.live[key_id] = live
        return live

    async def _new_key(self, message: NewKey) -> KeyRecord:
        from kms_actors.keys.registry import _Live

        r, caller = self.r, message.caller
        scope = (caller.account_id, caller.region)
        customer = message.key_manager == "CUSTOMER"
        count = 0
        if customer:
            cached = r.customer_counts.get(scope)
            count = (
                cached
                if cached is not None
                else await r.deps.store.keys.count_customer_keys(*scope)
            )
            if count >= r.max_customer_keys:
                raise LimitExceededException(
                    "The request was rejected because a quota was exceeded: at most "
                    f"{r.max_customer_keys} customer managed keys per account and Region."
                )
        key_id = new_key_id()
        arn = key_arn(caller.region, caller.account_id, key_id, caller.partition)
        now = r.deps.clock.now()
        material, wrapped = await r.deps.hsm.new_material(arn, 1)
        key = KeyRecord(
            key_id=key_id,
            account_id=caller.account_id,
            region=caller.region,
            arn=arn,
            description=message.description,
            key_manager=message.key_manager,
            creation_date=now,
            policy=message.policy or default_policy(caller.partition, caller.account_id),
        )
        material_record = MaterialRecord(
            key_id=key_id, version=1, material_id=material.material_id, wrapped=wrapped, created=now
        )
        tags = [
            TagRecord(key_id=key_id, tag_key=k, tag_value=v)
            for k, v in sorted(dict(message.tags).items())
        ]
        await r.deps.store.keys.insert(key, material_record, tags)
        if customer:
            r.customer_counts[scope] = count + 1
        r.material_index[material.material_id] = key_id
        actor = build_actor(r.deps, key, {material.material_id: (material_record, material)}, tags)
        first = [actor]

        async def factory(attempt: int) -> Any:
            if attempt == 0 and first:
                return first.pop()
            return await load_actor(r.deps, key_id)

        ref = r.supervisor.spawn(key_id, factory, on_exit=r.on_key_exit)
        r.live[key_id] = _Live(ref, caller.account_id, caller.region, key_id)
        return key

    async def _ensure_aws_managed(self, caller: Caller, ref: KeyRef) -> AliasRecord:
        existing = self.r.aliases.get((ref.account_id, ref.region, ref.name))
        if existing is not None:
            return existing
        service = ref.name[len(AWS_ALIAS_PREFIX) :]
        key = await self._new_key(
            NewKey(
                caller=caller,
                key_manager="AWS",
                description=(
                    f"Default key that protects my {service} resources when no other key is defined"
                ),
            )
        )
        return await self._insert_alias(caller, ref.name, key.key_id)

    # --- aliases ------------------------------------------------------------------------------

    async def _insert_alias(self, caller: Caller, name: str, key_id: str) -> AliasRecord:
        now = self.r.deps.clock.now()
        alias = AliasRecord(
            account_id=caller.account_id,
            region=caller.region,
            alias_name=name,
            target_key_id=key_id,
            creation_date=now,
            last_updated_date=now,
        )
        await self.r.deps.store.aliases.insert(alias)
        self.r.aliases[(caller.account_id, caller.region, name)] = alias
        return alias

    async def _target_key(
        self, caller: Caller, target: KeyRef, operation: str, auth: Auth | None
    ) -> KeyRecord:
        if target.kind != "key":
            raise key_not_found(target)
        check: Any = CheckState(operation)
        key: KeyRecord = await self.r.ask_key(
            target,
            target.name,
            check if auth is None else Authorized(auth, check),
            spawn=self._spawn,  # here, not by asking the registry actor: that is us
        )
        if key.account_id != caller.account_id:
            raise key_not_found(target)
        return key

    async def _new_alias(
        self, caller: Caller, name: str, target: KeyRef, auth: Auth | None
    ) -> AliasRecord:
        slot = (caller.account_id, caller.region, name)
        if slot in self.r.aliases:
            arn = alias_arn(caller.region, caller.account_id, name, caller.partition)
            raise AlreadyExistsException(f"An alias with the name {arn} already exists")
        key = await self._target_key(caller, target, "CreateAlias", auth)
        return await self._insert_alias(caller, name, key.key_id)

    async def _move_alias(
        self, caller: Caller, name: str, target: KeyRef, auth: Auth | None
    ) -> AliasRecord:
        slot = (caller.account_id, caller.region, name)
        alias = self.r.aliases.get(slot)
        if alias is None:
            arn = alias_arn(caller.region, caller.account_id, name, caller.partition)
            raise NotFoundException(f"Alias {arn} is not found.")
        key = await self._target_key(caller, target, "UpdateAlias", auth)
        moved = msgspec.structs.replace(
            alias, target_key_id=key.key_id, last_updated_date=self.r.deps.clock.now()
        )
        await self.r.deps.store.aliases.update(moved)
        self.r.aliases[slot] = moved
        return moved

    async def _drop_alias(self, caller: Caller, name: str) -> None:
        slot = (caller.account_id, caller.region, name)
        if slot not in self.r.aliases:
            arn = alias_arn(caller.region, caller.account_id, name, caller.partition)
            raise NotFoundException(f"Alias {arn} is not found.")
        await self.r.deps.store.aliases.delete(*slot)
        del self.r.aliases[slot]

    # --- deletion -----------------------------------------------------------------------------

    async def _purge(self, key_id: str) -> KeyRecord | None:
        """Delete a key whose deletion date has passed; answer its last record, or None."""
        r = self.r
        live = r.live.get(key_id)
        if live is None:
            key = await r.deps.store.keys.get(key_id)
            if key is None:
                return None
            ref = KeyRef("key", key_id, key.account_id, key.region, key_id)
            live = await self._spawn(key_id, ref)
        deleted: KeyRecord | None = await live.ref.ask(Purge())
        if deleted is None:
            return None
        for slot, alias in list(r.aliases.items()):
            if alias.target_key_id == key_id:
                del r.aliases[slot]
        for material_id, owner in list(r.material_index.items()):
            if owner == key_id:
                del r.material_index[material_id]
        scope = (live.account_id, live.region)
        if scope in r.customer_counts:
            r.customer_counts[scope] -= 1
        live.ref.tell_nowait(Stop())
        return deleted


async def load_actor_or_none(deps: Any, key_id: str) -> Any:
    """Load a key's actor, or None if the key does not exist."""
    try:
        return await load_actor(deps, key_id)
    except NotFoundException:
        return None
