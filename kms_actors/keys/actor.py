"""The KeyActor: one per KMS key, the only writer of its key's state.

It handles one message at a time, so every state change is linearizable. A change is committed
to the store before the actor's memory changes and before it replies; a failed write leaves
memory as it was. Crypto requests are usually only *admitted* here (state, usage, material);
the crypto itself runs in the HSM pool, outside this mailbox, so a hot key is not a
bottleneck. ``AdmitAnd`` is the exception: when the crypto runs inline (it cannot yield, so
it holds the mailbox no longer than the admission would), the whole request finishes here and
the actor's answer is the request's answer, which lets the audit log release it in the same
step that commits its event (see ``kms_actors.ops._deferred``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import msgspec

from kms_actors.domain import states
from kms_actors.domain.grants import check_tokens
from kms_actors.domain.policy import compile_policy, lockout_check
from kms_actors.domain.principal import Caller
from kms_actors.domain.records import GrantRecord, KeyRecord, MaterialRecord, TagRecord
from kms_actors.domain.states import KeyState
from kms_actors.errors import (
    AccessDeniedException,
    InvalidCiphertextException,
    KmsError,
    KMSInternalException,
    NotFoundException,
    TagException,
)
from kms_actors.hsm import INVALID_CIPHERTEXT
from kms_actors.keys.authorize import Authorizer, request_context
from kms_actors.keys.grants import GrantBook
from kms_actors.keys.messages import (
    Admission,
    Admit,
    AdmitAnd,
    Auth,
    Authorized,
    CancelDeletion,
    CheckState,
    CreateGrant,
    Describe,
    Disable,
    Enable,
    GetPolicy,
    KeyMessage,
    ListGrants,
    ListTags,
    Purge,
    PutPolicy,
    RetireGrant,
    RevokeGrant,
    ScheduleDeletion,
    Tag,
    Untag,
    UpdateDescription,
)

log = logging.getLogger("kms_actors.keys")

DAY = 86_400.0
MAX_TAGS = 50

# Operations on an AWS managed key that only the AWS service itself may perform.
_AWS_MANAGED_FORBIDDEN = frozenset(
    {
        "EnableKey",
        "DisableKey",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "UpdateKeyDescription",
        "TagResource",
        "UntagResource",
    }
)


def check_tags(tags: tuple[tuple[str, str], ...], total: int) -> None:
    """Check tags as AWS does.

    Raises:
        TagException: A tag key starts with the reserved ``aws:`` or the key would have more
            than 50 tags.
    """
    for tag_key, _value in tags:
        if tag_key.lower().startswith("aws:"):
            raise TagException("Tags beginning with aws: are reserved")
    if total > MAX_TAGS:
        raise TagException(f"Cannot exceed {MAX_TAGS} tags per resource")


class DeletionTimers(Protocol):
    """What the key actor needs from the scheduler."""

    def schedule(self, key_id: str, due: float) -> None: ...

    def cancel(self, key_id: str) -> None: ...


class KeyDeps:
    """What every key actor is built with (shared by all of them)."""

    def __init__(self, *, store: Any, hsm: Any, clock: Any, timers: DeletionTimers) -> None:
        self.store = store
        self.hsm = hsm
        self.clock = clock
        self.timers = timers
        # Tests inject faults here: when set, it is called with every message a key handles.
        self.fault_hook: Callable[[object], None] | None = None


class KeyActor:
    """Owns one key: its record, its material versions (unwrapped handles) and its tags."""

    def __init__(
        self,
        *,
        key: KeyRecord,
        materials: dict[bytes, tuple[MaterialRecord, Any]],
        tags: list[TagRecord],
        deps: KeyDeps,
        grants: Sequence[GrantRecord] = (),
    ) -> None:
        self.key = key
        self._materials = materials  # material_id -> (record, hsm.Material)
        self._current = self._find_current()
        self._tags = tags
        self._deps = deps
        self._store = deps.store
        self._clock = deps.clock
        self._timers = deps.timers
        self._deleted = False
        self._via_grant = False  # the request being handled was allowed by a grant only
        self._authorizer = Authorizer(compile_policy(key.policy))
        self._grants = GrantBook(key, grants, deps.store, deps.clock)

    def material_ids(self) -> list[bytes]:
        """Return the ids of every material version of this key."""
        return list(self._materials)

    def _find_current(self) -> Any:
        for record, material in self._materials.values():
            if record.version == self.key.current_version:
                return material
        return None

    async def handle(self, message: KeyMessage) -> Any:
        """Handle one message (see kms_actors.keys.messages)."""
        if self._deps.fault_hook is not None:
            # Tests target commands, so they see the command inside an authorized request.
            self._deps.fault_hook(message.command if isinstance(message, Authorized) else message)
        if self._deleted:
            command = message.command if isinstance(message, Authorized) else message
            if isinstance(command, AdmitAnd) and command.by_blob:
                raise InvalidCiphertextException(INVALID_CIPHERTEXT)
            raise NotFoundException(f"Key '{self.key.arn}' does not exist")
        if isinstance(message, Authorized):
            auth = message.auth
            if auth.grant_tokens:
                check_tokens(auth.grant_tokens)  # malformed tokens fail whatever allows the call
            if isinstance(message.command, RetireGrant):
                # Retiring is decided by the grant itself (retiring principal, grantee,
                # issuing account), not by the key policy.
                return await self._grants.retire(self.key, auth.caller, message.command.grant_id)
            via_grant = self._authorizer.authorize(
                auth, self.key, self._grants, self._tags, self._clock.now()
            )
            self._via_grant = via_grant
            return await self._dispatch(message.command, auth)
        self._via_grant = False
        return await self._dispatch(message, None)

    async def _dispatch(self, message: KeyMessage, auth: Auth | None) -> Any:
        match message:
            case Admit(operation=operation, material_id=material_id):
                return self._admit(operation, material_id)
            case AdmitAnd(operation=operation, material_id=material_id, finish=finish):
                return await self._admit_and(operation, material_id, finish)
            case Describe():
                return self.key
            case CheckState(operation=operation):
                states.check(KeyState(self.key.key_state), operation, self.key.arn)
                return self.key
            case Enable():
                return await self._lifecycle("EnableKey")
            case Disable():
                return await self._lifecycle("DisableKey")
            case UpdateDescription(description=description):
                self._check_managed("UpdateKeyDescription")
                states.check(KeyState(self.key.key_state), "UpdateKeyDescription", self.key.arn)
                return await self._save(self._replace(description=description))
            case ScheduleDeletion(pending_window_in_days=days):
                return await self._schedule_deletion(days)
            case CancelDeletion():
                return await self._cancel_deletion()
            case Tag(tags=tags):
                return await self._tag(tags)
            case Untag(tag_keys=tag_keys):
                self._check_managed("UntagResource")
                states.check(KeyState(self.key.key_state), "UntagResource", self.key.arn)
                await self._store.tags.remove(self.key.key_id, list(tag_keys))
                drop = set(tag_keys)
                self._tags = [t for t in self._tags if t.tag_key not in drop]
                return None
            case ListTags():
                return list(self._tags)
            case Purge():
                return await self._purge()
            case GetPolicy():
                return self.key.policy
            case PutPolicy(policy=text, bypass_lockout_check=bypass):
                return await self._put_policy(text, bypass, auth)
            case CreateGrant():
                states.check(KeyState(self.key.key_state), "CreateGrant", self.key.arn)
                return await self._grants.create(
                    self.key, self._caller(auth), message, via_grant=self._via_grant
                )
            case ListGrants():
                return self._grants.list(self.key, message)
            case RetireGrant(grant_id=grant_id):
                return await self._grants.retire(self.key, self._caller(auth), grant_id)
            case RevokeGrant(grant_id=grant_id):
                return await self._grants.revoke(self.key, grant_id)

    @staticmethod
    def _caller(auth: Auth | None) -> Caller:
        if auth is None:
            raise KMSInternalException()  # grant commands always come authorized
        return auth.caller

    async def _put_policy(self, text: str, bypass: bool, auth: Auth | None) -> None:
        self._check_managed("PutKeyPolicy")
        states.check(KeyState(self.key.key_state), "PutKeyPolicy", self.key.arn)
        policy = compile_policy(text)
        if not bypass and auth is not None:
            ctx = request_context(
                Auth(caller=auth.caller, operation="PutKeyPolicy"),
                self.key,
                self._tags,
                self._clock.now(),
            )
            lockout_check(policy, ctx, auth.caller.identity_policies)
        await self._save(self._replace(policy=text))
        self._authorizer = Authorizer(policy)

    # --- crypto admission (hot path: no awaits) ---------------------------------------------

    def _admit(self, operation: str, material_id: bytes | None) -> Admission:
        key = self.key
        if key.key_state != "Enabled":
            states.check(KeyState(key.key_state), operation, key.arn)
        if material_id is None:
            material = self._current
            if material is None:
                raise KMSInternalException()
            return Admission(key, material)
        entry = self._materials.get(material_id)
        if entry is None:
            raise InvalidCiphertextException(INVALID_CIPHERTEXT)
        return Admission(key, entry[1])

    async def _admit_and(
        self,
        operation: str,
        material_id: bytes | None,
        finish: Callable[[Admission], Awaitable[Any]],
    ) -> Any:
        admission = self._admit(operation, material_id)
        try:
            return await finish(admission)
        except KmsError:
            raise
        except Exception:
            # A bug in the request's own code is the request's failure, as it would be in the
            # caller's task; it is no reason to restart the key.
            log.exception("%s on key %s failed unexpectedly", operation, self.key.key_id)
            raise KMSInternalException() from None

    # --- lifecycle ---------------------------------------------------------------------------

    def _check_managed(self, operation: str) -> None:
        if self.key.key_manager == "AWS" and operation in _AWS_MANAGED_FORBIDDEN:
            raise AccessDeniedException(
                f"You cannot perform kms:{operation} on an AWS managed key: {self.key.arn}"
            )

    def _replace(self, **changes: Any) -> KeyRecord:
        return msgspec.structs.replace(self.key, **changes)

    async def _save(self, key: KeyRecord) -> KeyRecord:
        await self._store.keys.update(key)  # committed before memory changes
        self.key = key
        return key

    async def _lifecycle(self, operation: str) -> KeyRecord:
        self._check_managed(operation)
        new_state = states.transition(KeyState(self.key.key_state), operation, self.key.arn)
        if new_state == self.key.key_state:
            return self.key
        return await self._save(self._replace(key_state=str(new_state)))

    async def _schedule_deletion(self, days: int) -> KeyRecord:
        self._check_managed("ScheduleKeyDeletion")
        new_state = states.transition(
            KeyState(self.key.key_state), "ScheduleKeyDeletion", self.key.arn
        )
        due = self._clock.now() + days * DAY
        key = await self._save(
            self._replace(
                key_state=str(new_state),
                deletion_date=due,
                pending_deletion_window_in_days=days,
            )
        )
        self._timers.schedule(key.key_id, due)
        return key

    async def _cancel_deletion(self) -> KeyRecord:
        self._check_managed("CancelKeyDeletion")
        new_state = states.transition(
            KeyState(self.key.key_state), "CancelKeyDeletion", self.key.arn
        )
        key = await self._save(
            self._replace(
                key_state=str(new_state), deletion_date=None, pending_deletion_window_in_days=None
            )
        )
        self._timers.cancel(key.key_id)
        return key

    async def _tag(self, tags: tuple[tuple[str, str], ...]) -> None:
        self._check_managed("TagResource")
        states.check(KeyState(self.key.key_state), "TagResource", self.key.arn)
        merged = {t.tag_key: t.tag_value for t in self._tags}
        merged.update(dict(tags))
        check_tags(tags, len(merged))
        records = [TagRecord(key_id=self.key.key_id, tag_key=k, tag_value=v) for k, v in tags]
        await self._store.tags.put(self.key.key_id, records)
        self._tags = [
            TagRecord(key_id=self.key.key_id, tag_key=k, tag_value=v)
            for k, v in sorted(merged.items())
        ]

    async def _purge(self) -> KeyRecord | None:
        key = self.key
        if key.key_state != "PendingDeletion" or key.deletion_date is None:
            return None
        if key.deletion_date > self._clock.now():
            return None
        await self._store.keys.purge(key.key_id)
        self._deleted = True
        log.info("key %s deleted after its waiting period", key.key_id)
        return key
