"""Repositories for aliases and tags."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Sequence

from kms_actors.domain.records import AliasRecord, TagRecord
from kms_actors.store._db import Database
from kms_actors.store._errors import AliasExists
from kms_actors.store._keys import check_owner, upsert_tags
from kms_actors.store._tables import ALIASES, TAGS, is_duplicate, is_missing_parent


class AliasRepository:
    """The aliases table: names unique per account and region, each targeting one key."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, alias: AliasRecord) -> None:
        """Store a new alias.

        Raises:
            AliasExists: the account and region already have an alias of that name.
            KeyError: the target key is not stored.
        """
        async with self._db.transaction() as conn:
            try:
                await conn.execute(ALIASES.insert_sql, ALIASES.values(alias))
            except sqlite3.IntegrityError as exc:
                if is_duplicate(exc):
                    raise AliasExists(alias.alias_name) from exc
                if is_missing_parent(exc):
                    raise KeyError(alias.target_key_id) from exc
                raise

    async def update(self, alias: AliasRecord) -> None:
        """Replace the stored alias of the same account, region and name.

        Raises:
            KeyError: no such alias, or the target key is not stored.
        """
        async with self._db.transaction() as conn:
            try:
                rows = await conn.execute(
                    "UPDATE aliases SET target_key_id = ?, creation_date = ?,"
                    " last_updated_date = ?"
                    " WHERE account_id = ? AND region = ? AND alias_name = ?"
                    " RETURNING alias_name",
                    (
                        alias.target_key_id,
                        alias.creation_date,
                        alias.last_updated_date,
                        alias.account_id,
                        alias.region,
                        alias.alias_name,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                if is_missing_parent(exc):
                    raise KeyError(alias.target_key_id) from exc
                raise
            if not rows:
                raise KeyError(alias.alias_name)

    async def delete(self, account_id: str, region: str, alias_name: str) -> None:
        """Delete the alias; deleting one that does not exist does nothing."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "DELETE FROM aliases WHERE account_id = ? AND region = ? AND alias_name = ?",
                (account_id, region, alias_name),
            )

    async def get(self, account_id: str, region: str, alias_name: str) -> AliasRecord | None:
        """Return the alias, or None."""
        rows = await self._db.fetch(
            f"{ALIASES.select_sql} WHERE account_id = ? AND region = ? AND alias_name = ?",
            (account_id, region, alias_name),
        )
        return ALIASES.record(rows[0]) if rows else None

    async def list(
        self, account_id: str, region: str, *, key_id: str | None, limit: int, after: str | None
    ) -> builtins.list[AliasRecord]:
        """Return up to ``limit`` aliases of the account and region, ordered by name.

        ``key_id`` keeps only the aliases targeting that key. ``after`` is the last alias name
        of the previous page; since pages are ordered by name, a marker whose alias has been
        deleted meanwhile still works.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        rows = await self._db.fetch(
            f"{ALIASES.select_sql} WHERE account_id = ?1 AND region = ?2"
            " AND (?3 IS NULL OR target_key_id = ?3) AND (?4 IS NULL OR alias_name > ?4)"
            " ORDER BY alias_name LIMIT ?5",
            (account_id, region, key_id, after, limit),
        )
        return ALIASES.records(rows)

    async def all(self) -> builtins.list[AliasRecord]:
        """Return every alias, ordered by account, region and name."""
        rows = await self._db.fetch(f"{ALIASES.select_sql} ORDER BY account_id, region, alias_name")
        return ALIASES.records(rows)


class TagRepository:
    """The tags table: at most one value per (key, tag key)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, key_id: str, tags: Sequence[TagRecord]) -> None:
        """Add tags to the key in one transaction; a tag key it already has gets the new value.

        Raises:
            KeyError: the key is not stored.
        """
        check_owner(key_id, tags)
        if not tags:
            return
        async with self._db.transaction() as conn:
            try:
                await upsert_tags(conn, tags)
            except sqlite3.IntegrityError as exc:
                if is_missing_parent(exc):
                    raise KeyError(key_id) from exc
                raise

    async def remove(self, key_id: str, tag_keys: Sequence[str]) -> None:
        """Remove the key's tags with these tag keys; tag keys it does not have are ignored."""
        if not tag_keys:
            return
        async with self._db.transaction() as conn:
            await conn.executemany(
                "DELETE FROM tags WHERE key_id = ? AND tag_key = ?",
                [(key_id, tag_key) for tag_key in tag_keys],
            )

    async def list(self, key_id: str) -> builtins.list[TagRecord]:
        """Return the key's tags ordered by tag key."""
        rows = await self._db.fetch(
            f"{TAGS.select_sql} WHERE key_id = ? ORDER BY tag_key", (key_id,)
        )
        return TAGS.records(rows)
