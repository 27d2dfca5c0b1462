"""The key registry: resolve identifiers, spawn and passivate key actors, enforce quotas.

Reads (resolving an alias, finding a live actor) happen in the caller's task against maps only
the registry's own actor writes, so the hot path costs dictionary lookups. Everything that
changes those maps (creating keys and aliases, spawning, purging) goes through the registry
actor's mailbox, one message at a time: two callers can never spawn two actors for one key,
and quotas and alias uniqueness cannot race.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import msgspec

from kms_actors.domain.identifiers import KeyRef, key_arn, key_not_found, parse_key_ref
from kms_actors.domain.principal import Caller
from kms_actors.domain.records import AliasRecord, KeyRecord
from kms_actors.errors import KMSInternalException
from kms_actors.keys import _commands as cmd
from kms_actors.keys.actor import KeyDeps
from kms_actors.keys.messages import AdmitAnd, Auth, Authorized
from kms_actors.runtime import ActorRef, ActorStopped, Deferral, ExitReason, Stop, Supervisor

log = logging.getLogger("kms_actors.keys")


class RequestAudit:
    """What the router keeps of the current request for its audit event.

    ``resources``: the key ARNs it touched (the event's ``resources``). ``deferral``: who
    answers its AdmitAnd in place of the key actor, in durable audit mode, so that the answer
    leaves with the request's committed audit event (``kms_actors.ops._deferred``).
    """

    __slots__ = ("deferral", "resources")

    def __init__(self) -> None:
        self.resources: list[str] = []
        self.deferral: Deferral | None = None


# The router sets a fresh one per audited request (one context variable: each costs a set and
# a reset per request).
REQUEST_AUDIT: contextvars.ContextVar[RequestAudit | None] = contextvars.ContextVar(
    "kms_actors_request_audit", default=None
)


def note_resources(*arns: str) -> None:
    """Add ARNs to the current request's audit resources (keys and aliases it changed)."""
    audit = REQUEST_AUDIT.get()
    if audit is not None:
        touched = audit.resources
        for arn in arns:
            if arn not in touched:
                touched.append(arn)


def _note_resource(live: _Live) -> None:
    audit = REQUEST_AUDIT.get()
    if audit is not None:
        touched = audit.resources
        arn = live.arn
        if arn not in touched:
            touched.append(arn)


# How many actors of one key a request tries. Each retry means the key's actor stopped between
# the lookup and the ask (passivated, or purged); a few in a row mean something keeps stopping
# it, and the request fails rather than spin.
_ASK_ATTEMPTS = 8


# What AWS lets a principal of another account do with a key (when both policies allow it).
CROSS_ACCOUNT_OPERATIONS = frozenset(
    {
        "CreateGrant",
        "Decrypt",
        "DescribeKey",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "GetKeyRotationStatus",
        "GetPublicKey",
        "ListGrants",
        "ReEncryptFrom",
        "ReEncryptTo",
        "RetireGrant",
        "RevokeGrant",
        "Sign",
        "Verify",
        "VerifyMac",
    }
)


class _Live:
    """A running key actor, where its key lives and the key's ARN."""

    __slots__ = ("account_id", "arn", "last_used", "ref", "region")

    def __init__(self, ref: ActorRef[Any], account_id: str, region: str, key_id: str) -> None:
        self.ref = ref
        self.account_id = account_id
        self.region = region
        self.arn = key_arn(region, account_id, key_id)
        self.last_used = time.monotonic()


class KeyRegistry:
    """Finds the actor of a key from any of its identifiers; owns the key supervisor."""

    def __init__(
        self,
        deps: KeyDeps,
        supervisor: Supervisor,
        *,
        max_customer_keys: int,
        passivate_after: float,
    ) -> None:
        self.deps = deps
        self.supervisor = supervisor
        self.max_customer_keys = max_customer_keys
        self.passivate_after = passivate_after
        self.live: dict[str, _Live] = {}
        self.aliases: dict[tuple[str, str, str], AliasRecord] = {}
        self.material_index: dict[bytes, str] = {}
        self.customer_counts: dict[tuple[str, str], int] = {}
        self._actor: ActorRef[Any] | None = None

    # --- start-up -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the alias table and start the registry's own actor."""
        for alias in await self.deps.store.aliases.all():
            self.aliases[(alias.account_id, alias.region, alias.alias_name)] = alias
        handler = cmd.RegistryActor(self)

        async def factory(_attempt: int) -> cmd.RegistryActor:
            return handler

        self._actor = self.supervisor.spawn("key-registry", factory)

    async def sweep_idle(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Passivate key actors idle for ``passivate_after`` seconds, forever."""
        task_status.started()
        period = max(self.passivate_after / 4, 0.01)
        while True:
            await anyio.sleep(period)
            self.passivate_idle(time.monotonic() - self.passivate_after)

    def passivate_idle(self, idle_since: float) -> int:
        """Ask every actor unused since ``idle_since`` (monotonic) to stop; return how many."""
        count = 0
        for live in list(self.live.values()):
            if live.last_used < idle_since:
                live.last_used = float("inf")  # asked once; a new use re-arms it
                if live.ref.tell_nowait(Stop()):
                    count += 1
                else:
                    live.last_used = 0.0  # mailbox full: it is busy, try next sweep
        return count

    # --- the registry actor's helpers ----------------------------------------------------------

    def on_key_exit(self, ref: ActorRef[Any], reason: ExitReason) -> None:
        """Forget a stopped key actor, so the next request spawns a fresh one."""
        live = self.live.get(ref.name)
        if live is not None and live.ref is ref:
            del self.live[ref.name]
        if reason == "failed":
            log.error("key actor %s stopped after exhausting its restart budget", ref.name)

    async def command(self, message: Any) -> Any:
        """Ask the registry actor."""
        assert self._actor is not None, "registry not started"
        return await self._actor.ask(message)

    # --- resolving (hot path) -----------------------------------------------------------------

    def parse(self, caller: Caller, key_id: str) -> KeyRef:
        """Parse a KeyId parameter in the caller's account and region."""
        return parse_key_ref(key_id, caller.account_id, caller.region)

    async def resolve(self, caller: Caller, ref: KeyRef, *, cross_account: bool = False) -> str:
        """Return the key id ``ref`` names, creating an AWS managed key on first use.

        A key of another account is reachable only by ARN and only for the operations AWS
        allows across accounts (``cross_account``); its key policy then decides.

        Raises:
            NotFoundException: No such key or alias visible to the caller.
        """
        if ref.region != caller.region:
            raise key_not_found(ref)  # other Regions are other services
        if ref.account_id != caller.account_id and not cross_account:
            raise key_not_found(ref)
        if ref.kind == "key":
            return ref.name
        alias = self.aliases.get((ref.account_id, ref.region, ref.name))
        if alias is not None:
            return alias.target_key_id
        if cmd.is_aws_managed_alias(ref.name) and ref.account_id == caller.account_id:
            created: AliasRecord = await self.command(cmd.EnsureAwsManagedKey(caller, ref))
            return created.target_key_id
        raise key_not_found(ref)

    async def ask(
        self, caller: Caller, key_id_param: str, message: Any, *, auth: Auth | None = None
    ) -> Any:
        """Resolve ``key_id_param`` and ask its key actor ``message``.

        With ``auth`` the actor authorizes the request (key policy, identity policies,
        grants) before running it.
        """
        ref = parse_key_ref(key_id_param, caller.account_id, caller.region)
        cross = auth is not None and auth.operation in CROSS_ACCOUNT_OPERATIONS
        key_id = await self.resolve(caller, ref, cross_account=cross)
        if auth is not None:
            if ref.kind == "alias" and auth.request_alias is None:
                auth = msgspec.structs.replace(auth, request_alias=ref.name)
            message = Authorized(auth, message)
        return await self.ask_key(ref, key_id, message)

    async def ask_key(
        self,
        ref: KeyRef,
        key_id: str,
        message: Any,
        *,
        any_account: bool = False,
        spawn: Callable[[str, KeyRef], Awaitable[_Live]] | None = None,
    ) -> Any:
        """Ask the actor of ``key_id``, spawning it if needed; ``ref`` words NotFound errors.

        The key must live in the ref's Region and, unless ``any_account``, in its account.
        An actor passivated or purged between the lookup and the ask never handled the
        message (a stopped actor answers what is still queued with ActorStopped, and has left
        ``live`` by then), so the message goes to the key's next actor.

        Args:
            ref: The identifier the request named the key by, with the account and Region the
                key must be in.
            key_id: The key ``ref`` resolved to.
            message: What to ask the actor.
            any_account: Accept a key of another account (the message is Authorized, so the
                key's policy decides).
            spawn: Starts a missing actor; by default the registry actor does. The registry
                actor passes its own spawn, as it must not ask itself.

        An authorized ``AdmitAnd`` takes the request's ``RequestAudit.deferral`` along, if
        one is set: the hook then answers in place of the actor.

        Raises:
            NotFoundException: The key does not exist in the ref's account and Region.
            KMSInternalException: The key's actor stopped again on every attempt.
        """
        if type(message) is Authorized and type(message.command) is AdmitAnd:
            audit = REQUEST_AUDIT.get()
            if audit is not None and audit.deferral is not None and message.defer is None:
                message = Authorized(message.auth, message.command, audit.deferral)
        for _attempt in range(_ASK_ATTEMPTS):
            live = self.live.get(key_id)
            if live is None:
                if spawn is None:
                    live = await self.command(cmd.Spawn(key_id, ref))
                else:
                    live = await spawn(key_id, ref)
            if live.region != ref.region or (live.account_id != ref.account_id and not any_account):
                raise key_not_found(ref)
            live.last_used = time.monotonic()
            _note_resource(live)
            try:
                return await live.ref.ask(message)
            except ActorStopped:
                continue  # passivated or deleted meanwhile: look again
        raise KMSInternalException()

    async def ask_owner(self, caller: Caller, key_id: str, message: Any) -> Any:
        """Ask the key that owns a ciphertext (found by its material id) in the caller's Region.

        The key may belong to another account: the message must then be Authorized, and the
        key's policy decides.

        Raises:
            NotFoundException: The key is gone, or lives in another Region.
        """
        ref = KeyRef("key", key_id, caller.account_id, caller.region, key_id)
        return await self.ask_key(ref, key_id, message, any_account=isinstance(message, Authorized))

    def key_of_material(self, material_id: bytes) -> str | None:
        """Return the key id a cached material id belongs to, if known."""
        return self.material_index.get(material_id)

    async def find_material(self, material_id: bytes) -> str | None:
        """Return the key id that owns ``material_id`` (cache, then store)."""
        key_id = self.material_index.get(material_id)
        if key_id is None:
            record = await self.deps.store.materials.find(material_id)
            if record is None:
                return None
            key_id = record.key_id
            self.material_index[material_id] = key_id
        return key_id

    def list_aliases(self, account_id: str, region: str) -> list[AliasRecord]:
        """Return the aliases of an account and region, ordered by name."""
        found = [
            a for (acct, reg, _), a in self.aliases.items() if acct == account_id and reg == region
        ]
        found.sort(key=lambda a: a.alias_name)
        return found

    async def list_keys(self, caller: Caller, *, limit: int, after: str | None) -> list[KeyRecord]:
        """Return a page of the caller's keys in creation order."""
        keys: list[KeyRecord] = await self.deps.store.keys.list(
            caller.account_id, caller.region, limit=limit, after=after
        )
        return keys
