"""Persistent records: what the store saves and the actors hold in memory.

Records are plain frozen msgspec Structs with no behaviour. Timestamps are float epoch
seconds (UTC). Key material is never part of a record in plaintext: ``MaterialRecord.wrapped``
is the material wrapped under the root key by the ``hsm`` package.
"""

from __future__ import annotations

import msgspec


class KeyRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One KMS key (CMK) as persisted."""

    key_id: str
    account_id: str
    region: str
    arn: str
    description: str = ""
    key_state: str = "Enabled"
    key_manager: str = "CUSTOMER"
    key_spec: str = "SYMMETRIC_DEFAULT"
    key_usage: str = "ENCRYPT_DECRYPT"
    origin: str = "AWS_KMS"
    creation_date: float
    deletion_date: float | None = None
    pending_deletion_window_in_days: int | None = None
    current_version: int = 1
    policy: str = ""
    multi_region: bool = False
    rotation_enabled: bool = False
    rotation_period_in_days: int | None = None
    next_rotation_date: float | None = None


class MaterialRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One version of a key's material, wrapped under the root key."""

    key_id: str
    version: int
    material_id: bytes  # 16 opaque bytes named in ciphertext headers; not secret
    wrapped: bytes  # root-key-wrapped material; the store never sees plaintext material
    created: float
    rotation_type: str = ""  # "", "AUTOMATIC" or "ON_DEMAND"


class AliasRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One alias (``alias/<name>``) pointing at a key of the same account and region."""

    account_id: str
    region: str
    alias_name: str  # including the "alias/" prefix
    target_key_id: str
    creation_date: float
    last_updated_date: float


class TagRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One tag on a key."""

    key_id: str
    tag_key: str
    tag_value: str


class GrantRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One grant on a key."""

    key_id: str
    grant_id: str  # 64 hex characters, as AWS
    name: str = ""
    grantee_principal: str
    retiring_principal: str = ""
    issuing_account: str  # arn:aws:iam::<account>:root
    operations: tuple[str, ...]
    encryption_context_equals: dict[str, str] | None = None
    encryption_context_subset: dict[str, str] | None = None
    creation_date: float
