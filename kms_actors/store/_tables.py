"""How records map onto table rows, and what a violated constraint means.

Every record field is a column of the same name, so the SQL for plain inserts and selects is
derived from the record type and cannot drift from it; a field added to a record without a
migration fails loudly on the first insert.
"""

from __future__ import annotations

import sqlite3
from typing import Generic, TypeVar

import msgspec

from kms_actors.domain.records import AliasRecord, KeyRecord, MaterialRecord, TagRecord
from kms_actors.store._db import Row

R = TypeVar("R", bound=msgspec.Struct)

_UNIQUE = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})


class Table(Generic[R]):
    """One table whose columns are exactly the fields of one record type."""

    def __init__(self, name: str, record_type: type[R]) -> None:
        self.record_type = record_type
        self.columns: tuple[str, ...] = record_type.__struct_fields__
        columns = ", ".join(self.columns)
        placeholders = ", ".join("?" for _ in self.columns)
        # Table and column names are constants of this module, never outside input.
        self.insert_sql = f"INSERT INTO {name} ({columns}) VALUES ({placeholders})"  # noqa: S608
        self.select_sql = f"SELECT {columns} FROM {name}"  # noqa: S608

    def values(self, record: R) -> tuple[object, ...]:
        """Return the record's column values, in column order."""
        return msgspec.structs.astuple(record)

    def record(self, row: Row) -> R:
        """Build a record from a row selected with ``select_sql``.

        Lax conversion turns SQLite's 0/1 integers back into the records' booleans.
        """
        fields = dict(zip(self.columns, row, strict=True))
        return msgspec.convert(fields, self.record_type, strict=False)

    def records(self, rows: list[Row]) -> list[R]:
        """Build one record per row."""
        return [self.record(row) for row in rows]


KEYS = Table("keys", KeyRecord)
MATERIALS = Table("materials", MaterialRecord)
ALIASES = Table("aliases", AliasRecord)
TAGS = Table("tags", TagRecord)


def is_duplicate(exc: sqlite3.IntegrityError) -> bool:
    """Say whether a primary key or unique constraint failed."""
    return exc.sqlite_errorname in _UNIQUE


def is_missing_parent(exc: sqlite3.IntegrityError) -> bool:
    """Say whether a foreign key failed (the referenced key does not exist)."""
    return exc.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY"
