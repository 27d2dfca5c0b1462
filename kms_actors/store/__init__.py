"""Persistence of key metadata: the only package that speaks SQL.

``open_store(data_dir)`` yields a ``Store`` whose repositories (``keys``, ``materials``,
``aliases``, ``tags``, ``grants``) read and write frozen records from
``kms_actors.domain.records``. Every write has committed before it returns. Underneath is one
SQLite file in WAL mode, reached through aiosqlite on asyncio or a thread-driven sqlite3
connection on Trio (``_db``); the schema grows by numbered migrations (``_migrations``), and a
database newer than this code is refused, never downgraded. The store never sees plaintext key
material: materials hold only wrapped blobs.

Callers never see ``sqlite3`` errors they are meant to handle: those become the exceptions
below, or ``KeyError`` when a referenced key, alias or paging marker does not exist.

``open_audit_store(data_dir)`` opens the audit log's own database (``audit.sqlite3``, ``_audit``):
hash-chained event records, signed checkpoints and the prune anchor.
"""

from kms_actors.store._aliases import AliasRepository, TagRepository
from kms_actors.store._audit import (
    AUDIT_DATABASE_NAME,
    GENESIS_HASH,
    AuditChainConflict,
    AuditFilter,
    AuditRecord,
    AuditStore,
    Checkpoint,
    open_audit_store,
)
from kms_actors.store._errors import (
    AliasExists,
    GrantExists,
    KeyExists,
    MaterialExists,
    StoreError,
    StoreVersionError,
)
from kms_actors.store._grants import GrantRepository
from kms_actors.store._keys import KeyRepository, MaterialRepository
from kms_actors.store._store import DATABASE_NAME, Store, open_store

__all__ = [
    "AUDIT_DATABASE_NAME",
    "DATABASE_NAME",
    "GENESIS_HASH",
    "AliasExists",
    "AliasRepository",
    "AuditChainConflict",
    "AuditFilter",
    "AuditRecord",
    "AuditStore",
    "Checkpoint",
    "GrantExists",
    "GrantRepository",
    "KeyExists",
    "KeyRepository",
    "MaterialExists",
    "MaterialRepository",
    "Store",
    "StoreError",
    "StoreVersionError",
    "TagRepository",
    "open_audit_store",
    "open_store",
]
