"""Messages the key actors and the key registry understand (one union per actor)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import msgspec

from kms_actors.domain.principal import Caller
from kms_actors.domain.records import KeyRecord, TagRecord
from kms_actors.runtime import Deferral


class Admission(NamedTuple):
    """A crypto request the key actor admitted: the key as it was and the material to use."""

    key: KeyRecord
    material: Any  # kms_actors.hsm.Material: opaque, raw bytes stay inside hsm


# --- KeyActor messages --------------------------------------------------------------------------


class Describe(msgspec.Struct, frozen=True):
    """Return the key's record."""


class CheckState(msgspec.Struct, frozen=True):
    """Return the key's record if its state allows ``operation``."""

    operation: str


class Admit(msgspec.Struct, frozen=True):
    """Admit a crypto ``operation``: with the current material, or the one a blob names."""

    operation: str
    material_id: bytes | None = None


class AdmitAnd(msgspec.Struct, frozen=True):
    """Admit a crypto ``operation`` as Admit does, then answer ``await finish(admission)``.

    ``finish`` is the rest of the request (checks, the crypto, the response), run inside the
    actor so that the actor's answer is the request's answer; it must not yield (inline HSM
    crypto only: a thread hop here would hold up every other request for the key).
    ``by_blob``: the key was found from a ciphertext, so a key deleted meanwhile means an
    invalid ciphertext rather than NotFound (which would reveal that the key existed).
    """

    operation: str
    material_id: bytes | None
    finish: Callable[[Admission], Awaitable[Any]]
    by_blob: bool = False


class Enable(msgspec.Struct, frozen=True):
    """EnableKey."""


class Disable(msgspec.Struct, frozen=True):
    """DisableKey."""


class UpdateDescription(msgspec.Struct, frozen=True):
    """UpdateKeyDescription."""

    description: str


class ScheduleDeletion(msgspec.Struct, frozen=True):
    """ScheduleKeyDeletion."""

    pending_window_in_days: int


class CancelDeletion(msgspec.Struct, frozen=True):
    """CancelKeyDeletion."""


class Tag(msgspec.Struct, frozen=True):
    """TagResource."""

    tags: tuple[tuple[str, str], ...]


class Untag(msgspec.Struct, frozen=True):
    """UntagResource."""

    tag_keys: tuple[str, ...]


class ListTags(msgspec.Struct, frozen=True):
    """Return the key's tags, ordered by key."""


class Purge(msgspec.Struct, frozen=True):
    """Delete the key for good if its deletion date has passed; answer whether it did."""


class GetPolicy(msgspec.Struct, frozen=True):
    """GetKeyPolicy: return the key policy text."""


class PutPolicy(msgspec.Struct, frozen=True):
    """PutKeyPolicy (the lockout safety check runs unless bypassed)."""

    policy: str
    bypass_lockout_check: bool = False


class CreateGrant(msgspec.Struct, frozen=True, kw_only=True):
    """CreateGrant: answer (grant_id, grant_token)."""

    grantee_principal: str
    retiring_principal: str | None = None
    operations: tuple[str, ...]
    encryption_context_equals: dict[str, str] | None = None
    encryption_context_subset: dict[str, str] | None = None
    name: str | None = None


class ListGrants(msgspec.Struct, frozen=True, kw_only=True):
    """ListGrants: answer (grants, next_marker or None)."""

    limit: int = 50
    marker: str | None = None
    grant_id: str | None = None
    grantee_principal: str | None = None


class RetireGrant(msgspec.Struct, frozen=True):
    """RetireGrant (by key id + grant id, or by a token that names them)."""

    grant_id: str


class RevokeGrant(msgspec.Struct, frozen=True):
    """RevokeGrant."""

    grant_id: str


KeyMessage = (
    Describe
    | CheckState
    | Admit
    | AdmitAnd
    | Enable
    | Disable
    | UpdateDescription
    | ScheduleDeletion
    | CancelDeletion
    | Tag
    | Untag
    | ListTags
    | Purge
    | GetPolicy
    | PutPolicy
    | CreateGrant
    | ListGrants
    | RetireGrant
    | RevokeGrant
)


class Auth(msgspec.Struct, frozen=True, kw_only=True):
    """Who asks and for what: the key actor authorizes it against its policy and its grants.

    ``operation`` is the KMS operation as key policies and grants name it (``Encrypt``,
    ``ReEncryptFrom``...); the policy action is ``kms:<operation>``.
    """

    caller: Caller
    operation: str
    encryption_context: dict[str, str] | None = None
    grant_tokens: tuple[str, ...] = ()
    request_alias: str | None = None
    condition_keys: dict[str, Any] | None = None  # more condition keys (kms:GrantOperations...)


class Authorized(msgspec.Struct, frozen=True):
    """A command from a caller: authorized by the actor before it runs.

    ``defer``, when set (``AdmitAnd`` only), answers the caller in place of the actor: the
    request's audit event is queued with the answer, which is released once it is committed.
    """

    auth: Auth
    command: KeyMessage
    defer: Deferral | None = None


__all__ = ["Admission", "KeyMessage", "KeyRecord", "TagRecord"]
