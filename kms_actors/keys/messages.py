"""Messages the key actors and the key registry understand (one union per actor)."""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from kms_actors.domain.records import KeyRecord, TagRecord


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


KeyMessage = (
    Describe
    | CheckState
    | Admit
    | Enable
    | Disable
    | UpdateDescription
    | ScheduleDeletion
    | CancelDeletion
    | Tag
    | Untag
    | ListTags
    | Purge
)

__all__ = ["Admission", "KeyMessage", "KeyRecord", "TagRecord"]
