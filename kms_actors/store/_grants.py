"""The grants repository: one row per grant, deleted with its key."""

from __future__ import annotations

import builtins
import sqlite3
from typing import Any

import msgspec

from kms_actors.domain.records import GrantRecord
from kms_actors.store._db import Database, Row
from kms_actors.store._errors import GrantExists
from kms_actors.store._tables import is_duplicate, is_missing_parent

# Operations and the two constraints are JSON text; every other field is a plain column.
_JSON_FIELDS = frozenset({"operations", "encryption_context_equals", "encryption_context_subset"})
_COLUMNS: tuple[str, ...] = GrantRecord.__struct_fields__
_INSERT_SQL = (
    f"INSERT INTO grants ({', '.join(_COLUMNS)})"  # noqa: S608 - columns are record fields
    f" VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
_SELECT_SQL = f"SELECT {', '.join('g.' + c for c in _COLUMNS)} FROM grants AS g"  # noqa: S608
_ORDER = " ORDER BY g.creation_date, g.grant_id"
_AFTER = " AND (g.creation_date > ? OR (g.creation_date = ? AND g.grant_id > ?))"

_decode_json = msgspec.json.Decoder()


def _values(grant: GrantRecord) -> list[object]:
    values: list[object] = []
    for column, value in zip(_COLUMNS, msgspec.structs.astuple(grant), strict=True):
        if column in _JSON_FIELDS and value is not None:
            value = msgspec.json.encode(value).decode()
        values.append(value)
    return values


def _record(row: Row) -> GrantRecord:
    fields: dict[str, Any] = {}
    for column, value in zip(_COLUMNS, row, strict=True):
        if column in _JSON_FIELDS and value is not None:
            value = _decode_json.decode(value)
        fields[column] = value
    return msgspec.convert(fields, GrantRecord)


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


class GrantRepository:
    """The grants table. Lists come in (creation_date, grant_id) order."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, grant: GrantRecord) -> None:
        """Store a new grant.

        Raises:
            GrantExists: A grant with this id is already stored.
            KeyError: The grant's key is not stored.
        """
        async with self._db.transaction() as conn:
            try:
                await conn.execute(_INSERT_SQL, _values(grant))
            except sqlite3.IntegrityError as exc:
                if is_duplicate(exc):
                    raise GrantExists(grant.grant_id) from exc
                if is_missing_parent(exc):
                    raise KeyError(grant.key_id) from exc
                raise

    async def delete(self, key_id: str, grant_id: str) -> None:
        """Delete the key's grant; deleting one that does not exist does nothing."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "DELETE FROM grants WHERE key_id = ? AND grant_id = ?", (key_id, grant_id)
            )

    async def get(self, grant_id: str) -> GrantRecord | None:
        """Return the grant, or None."""
        rows = await self._db.fetch(f"{_SELECT_SQL} WHERE g.grant_id = ?", (grant_id,))
        return _record(rows[0]) if rows else None

    async def for_key(self, key_id: str) -> builtins.list[GrantRecord]:
        """Return every grant of the key."""
        rows = await self._db.fetch(f"{_SELECT_SQL} WHERE g.key_id = ?{_ORDER}", (key_id,))
        return [_record(row) for row in rows]

    async def retirable(
        self,
        region: str,
        retiring_principal: str,
        *,
        limit: int,
        after: tuple[float, str] | None = None,
    ) -> builtins.list[GrantRecord]:
        """Return up to ``limit`` grants naming ``retiring_principal``, on keys of any account
        in ``region`` (as ListRetirableGrants shows them).

        ``after`` is the ``(creation_date, grant_id)`` of the last grant of the previous page.
        """
        _check_limit(limit)
        sql = (
            f"{_SELECT_SQL} JOIN keys AS k ON k.key_id = g.key_id"
            " WHERE g.retiring_principal = ? AND g.retiring_principal != '' AND k.region = ?"
        )
        params: list[object] = [retiring_principal, region]
        if after is not None:
            sql += _AFTER
            params += [after[0], after[0], after[1]]
        rows = await self._db.fetch(f"{sql}{_ORDER} LIMIT ?", [*params, limit])
        return [_record(row) for row in rows]
