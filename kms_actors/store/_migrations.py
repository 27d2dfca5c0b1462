"""The schema, as numbered migrations, and the code that applies them.

Each migration is ``(version, sql)``; versions count up from 1 without gaps. The applied
version lives in ``PRAGMA user_version``. Every migration runs in its own transaction together
with the bump of ``user_version``, so a crash leaves the database at a whole version. A database
whose version is newer than the last migration here is refused, never downgraded.

To change the schema, append a migration; never edit one that has shipped.
"""

from __future__ import annotations

import pathlib
import sqlite3
from collections.abc import Sequence

from kms_actors.store._db import Connection, Database
from kms_actors.store._errors import StoreVersionError

_V1 = """
CREATE TABLE keys (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order, for stable paging
    key_id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    arn TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    key_state TEXT NOT NULL,
    key_manager TEXT NOT NULL,
    key_spec TEXT NOT NULL,
    key_usage TEXT NOT NULL,
    origin TEXT NOT NULL,
    creation_date REAL NOT NULL,
    deletion_date REAL,
    pending_deletion_window_in_days INTEGER,
    current_version INTEGER NOT NULL,
    policy TEXT NOT NULL,
    multi_region INTEGER NOT NULL CHECK (multi_region IN (0, 1)),
    rotation_enabled INTEGER NOT NULL CHECK (rotation_enabled IN (0, 1)),
    rotation_period_in_days INTEGER,
    next_rotation_date REAL
);
CREATE INDEX keys_by_account ON keys (account_id, region, seq);
CREATE INDEX keys_by_deletion_date ON keys (deletion_date) WHERE deletion_date IS NOT NULL;

CREATE TABLE materials (
    key_id TEXT NOT NULL REFERENCES keys (key_id),
    version INTEGER NOT NULL,
    material_id BLOB NOT NULL UNIQUE,  -- named in ciphertext headers; looked up on decrypt
    wrapped BLOB NOT NULL,  -- wrapped under the root key; never plaintext
    created REAL NOT NULL,
    rotation_type TEXT NOT NULL,
    PRIMARY KEY (key_id, version)
) WITHOUT ROWID;

CREATE TABLE aliases (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    alias_name TEXT NOT NULL,
    target_key_id TEXT NOT NULL REFERENCES keys (key_id),
    creation_date REAL NOT NULL,
    last_updated_date REAL NOT NULL,
    PRIMARY KEY (account_id, region, alias_name)
) WITHOUT ROWID;
CREATE INDEX aliases_by_target ON aliases (target_key_id);

CREATE TABLE tags (
    key_id TEXT NOT NULL REFERENCES keys (key_id),
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
) WITHOUT ROWID;
"""

# Grants (issue 5). Operations and constraints are JSON; a grant dies with its key. Grants are
# listed in (creation_date, grant_id) order, per key and per retiring principal.
_V2 = """
CREATE TABLE grants (
    grant_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    grantee_principal TEXT NOT NULL,
    retiring_principal TEXT NOT NULL,
    issuing_account TEXT NOT NULL,
    operations TEXT NOT NULL,  -- JSON array of grant operations
    encryption_context_equals TEXT,  -- JSON object, or NULL
    encryption_context_subset TEXT,  -- JSON object, or NULL
    creation_date REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX grants_by_key ON grants (key_id, creation_date, grant_id);
CREATE INDEX grants_by_retiring_principal ON grants (retiring_principal, creation_date, grant_id)
    WHERE retiring_principal != '';
"""

migrations: list[tuple[int, str]] = [
    (1, _V1),
    (2, _V2),
]


def latest_version() -> int:
    """Return the schema version this code writes."""
    return migrations[-1][0]


def split_statements(script: str) -> list[str]:
    """Split a SQL script into complete statements.

    ``executescript`` cannot be used: it commits any open transaction first, and each
    migration must run inside one. ``sqlite3.complete_statement`` knows about semicolons in
    strings, comments and trigger bodies, so only real statement ends split.
    """
    *pieces, rest = script.split(";")
    statements: list[str] = []
    pending = ""
    for piece in pieces:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if (pending + rest).strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending + rest!r}")
    return statements


def _refuse_newer(found: int, latest: int, path: pathlib.Path, what: str) -> StoreVersionError:
    return StoreVersionError(
        f"{what} {path} has schema version {found}, newer than the {latest} this kms_actors "
        "knows; refusing to open it (upgrade kms_actors, never downgrade the data)"
    )


async def _user_version(conn: Connection) -> int:
    rows = await conn.execute("PRAGMA user_version")
    return int(rows[0][0])


async def apply_migrations(
    db: Database,
    path: pathlib.Path,
    steps: Sequence[tuple[int, str]],
    *,
    what: str = "database",
) -> int:
    """Bring a database up to the last of ``steps`` (numbered SQL) and return its version.

    Each step runs in its own transaction with the version bump (``PRAGMA user_version``).

    Raises:
        StoreVersionError: the database is newer than this code.
    """
    latest = steps[-1][0]
    async with db.reading() as conn:
        found = await _user_version(conn)
    if found > latest:
        raise _refuse_newer(found, latest, path, what)
    for version, sql in steps:
        if version <= found:
            continue
        async with db.transaction() as conn:
            # Re-read under the write lock: another process may have migrated meanwhile.
            found = await _user_version(conn)
            if found > latest:
                raise _refuse_newer(found, latest, path, what)
            if version > found:
                for statement in split_statements(sql):
                    await conn.execute(statement)
                # `version` is an int from this module, never outside input.
                await conn.execute(f"PRAGMA user_version = {int(version)}")
        found = max(found, version)
    return found


async def migrate(db: Database, path: pathlib.Path) -> int:
    """Bring the key database up to the latest schema version and return that version.

    Raises:
        StoreVersionError: the database is newer than this code.
    """
    return await apply_migrations(db, path, migrations)
