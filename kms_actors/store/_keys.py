"""Repositories for keys and their material versions."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Sequence

from kms_actors.domain.records import KeyRecord, MaterialRecord, TagRecord
from kms_actors.store._db import Connection, Database
from kms_actors.store._errors import KeyExists, MaterialExists
from kms_actors.store._tables import KEYS, MATERIALS, TAGS, is_duplicate, is_missing_parent

# Every column but the key id, which names the row to replace.
_KEY_UPDATE_SQL = (
    "UPDATE keys SET "  # noqa: S608 - column names are constants of the record type
    + ", ".join(f"{column} = ?" for column in KEYS.columns if column != "key_id")
    + " WHERE key_id = ? RETURNING key_id"
)
_TAG_UPSERT_SQL = (
    "INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)"
    " ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value"
)


def check_owner(key_id: str, records: Sequence[MaterialRecord | TagRecord]) -> None:
    """Refuse records that belong to another key (a caller bug, not a client error)."""
    for record in records:
        if record.key_id != key_id:
            raise ValueError(f"record for key {record.key_id} given for key {key_id}")


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


async def _insert_key(conn: Connection, key: KeyRecord) -> None:
    try:
        await conn.execute(KEYS.insert_sql, KEYS.values(key))
    except sqlite3.IntegrityError as exc:
        if is_duplicate(exc):
            raise KeyExists(key.key_id) from exc
        raise


async def _update_key(conn: Connection, key: KeyRecord) -> None:
    values = KEYS.values(key)
    params = [v for c, v in zip(KEYS.columns, values, strict=True) if c != "key_id"]
    if not await conn.execute(_KEY_UPDATE_SQL, [*params, key.key_id]):
        raise KeyError(key.key_id)


async def _insert_material(conn: Connection, material: MaterialRecord) -> None:
    try:
        await conn.execute(MATERIALS.insert_sql, MATERIALS.values(material))
    except sqlite3.IntegrityError as exc:
        if is_duplicate(exc):
            raise MaterialExists(f"{material.key_id} version {material.version}") from exc
        if is_missing_parent(exc):
            raise KeyError(material.key_id) from exc
        raise


async def upsert_tags(conn: Connection, tags: Sequence[TagRecord]) -> None:
    """Insert tags, replacing the value of a tag key the key already has."""
    await conn.executemany(_TAG_UPSERT_SQL, [TAGS.values(tag) for tag in tags])


class KeyRepository:
    """The keys table: one row per KMS key, every record field a column."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(
        self, key: KeyRecord, material: MaterialRecord, tags: Sequence[TagRecord] = ()
    ) -> None:
        """Store a new key with its first material and tags, in one transaction.

        Raises:
            KeyExists: the key id or ARN is already stored (nothing is written).
            MaterialExists: the material id is already used (nothing is written).
        """
        check_owner(key.key_id, [material, *tags])
        async with self._db.transaction() as conn:
            await _insert_key(conn, key)
            await _insert_material(conn, material)
            if tags:
                await upsert_tags(conn, tags)

    async def update(self, key: KeyRecord) -> None:
        """Replace the stored row of ``key.key_id`` with ``key``.

        Raises:
            KeyError: no such key.
        """
        async with self._db.transaction() as conn:
            await _update_key(conn, key)

    async def get(self, key_id: str) -> KeyRecord | None:
        """Return the key, or None if there is no such key."""
        rows = await self._db.fetch(f"{KEYS.select_sql} WHERE key_id = ?", (key_id,))
        return KEYS.record(rows[0]) if rows else None

    async def list(
        self, account_id: str, region: str, *, limit: int, after: str | None
    ) -> builtins.list[KeyRecord]:
        """Return up to ``limit`` keys of the account and region in creation order.

        ``after`` is the key id of the last key of the previous page.

        Raises:
            KeyError: ``after`` names no key of this account and region.
        """
        _check_limit(limit)
        async with self._db.reading() as conn:
            start = 0
            if after is not None:
                marker = await conn.execute(
                    "SELECT seq FROM keys WHERE key_id = ? AND account_id = ? AND region = ?",
                    (after, account_id, region),
                )
                if not marker:
                    raise KeyError(after)
                start = marker[0][0]
            rows = await conn.execute(
                f"{KEYS.select_sql} WHERE account_id = ? AND region = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (account_id, region, start, limit),
            )
        return KEYS.records(rows)

    async def count_customer_keys(self, account_id: str, region: str) -> int:
        """Count the customer managed keys of the account and region, in any state."""
        rows = await self._db.fetch(
            "SELECT count(*) FROM keys"
            " WHERE account_id = ? AND region = ? AND key_manager = 'CUSTOMER'",
            (account_id, region),
        )
        return int(rows[0][0])

    async def pending_deletions(self) -> builtins.list[tuple[str, float]]:
        """Return ``(key_id, deletion_date)`` of every key with a deletion date, soonest first."""
        rows = await self._db.fetch(
            "SELECT key_id, deletion_date FROM keys"
            " WHERE deletion_date IS NOT NULL ORDER BY deletion_date, seq"
        )
        return [(str(key_id), float(date)) for key_id, date in rows]

    async def purge(self, key_id: str) -> None:
        """Delete the key, its materials, grants and tags and the aliases targeting it, atomically.

        Purging a key that is not stored does nothing.
        """
        async with self._db.transaction() as conn:
            # The grants' foreign key cascades too; deleting them here keeps purge explicit.
            await conn.execute("DELETE FROM grants WHERE key_id = ?", (key_id,))
            await conn.execute("DELETE FROM tags WHERE key_id = ?", (key_id,))
            await conn.execute("DELETE FROM aliases WHERE target_key_id = ?", (key_id,))
            await conn.execute("DELETE FROM materials WHERE key_id = ?", (key_id,))
            await conn.execute("DELETE FROM keys WHERE key_id = ?", (key_id,))

    async def all_ids(self) -> builtins.list[str]:
        """Return every stored key id, in creation order."""
        rows = await self._db.fetch("SELECT key_id FROM keys ORDER BY seq")
        return [str(key_id) for (key_id,) in rows]


class MaterialRepository:
    """The materials table: one row per (key, version) of wrapped key material."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, material: MaterialRecord, key: KeyRecord | None = None) -> None:
        """Store a new material version; also replace the key row, in the same transaction.

        Rotation passes the key with its bumped ``current_version`` so both land together.

        Raises:
            KeyError: the material's key is not stored.
            MaterialExists: the key already has this version, or the material id is taken.
        """
        if key is not None and key.key_id != material.key_id:
            raise ValueError(f"material of key {material.key_id} given with key {key.key_id}")
        async with self._db.transaction() as conn:
            await _insert_material(conn, material)
            if key is not None:
                await _update_key(conn, key)

    async def for_key(self, key_id: str) -> list[MaterialRecord]:
        """Return every material version of the key, oldest first."""
        rows = await self._db.fetch(
            f"{MATERIALS.select_sql} WHERE key_id = ? ORDER BY version", (key_id,)
        )
        return MATERIALS.records(rows)

    async def find(self, material_id: bytes) -> MaterialRecord | None:
        """Return the material a ciphertext header names, or None."""
        rows = await self._db.fetch(f"{MATERIALS.select_sql} WHERE material_id = ?", (material_id,))
        return MATERIALS.record(rows[0]) if rows else None
