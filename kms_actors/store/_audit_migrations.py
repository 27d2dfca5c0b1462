"""The audit database's schema, as numbered migrations, and the code that applies them.

The audit log lives in its own SQLite file, so it has its own version sequence (kept in
``PRAGMA user_version`` of that file), applied like the key store's: each migration in one
transaction with its version bump, and a database newer than this code is refused.

To change the schema, append a migration; never edit one that has shipped.
"""

from __future__ import annotations

import pathlib

from kms_actors.store._db import Connection, Database
from kms_actors.store._errors import StoreVersionError
from kms_actors.store._migrations import split_statements

_V1 = """
CREATE TABLE audit_records (
    seq INTEGER PRIMARY KEY,  -- position in the hash chain: 1, 2, 3, ... without gaps
    event_time REAL NOT NULL,  -- the event's eventTime, epoch seconds
    event_json BLOB NOT NULL,  -- the CloudTrail JSON record: exactly the bytes that were hashed
    account_id TEXT NOT NULL,  -- recipientAccountId
    region TEXT NOT NULL,
    event_name TEXT NOT NULL,
    event_id TEXT NOT NULL,
    read_only INTEGER NOT NULL CHECK (read_only IN (0, 1)),
    key_arn TEXT,  -- the first KMS key among the resources
    principal_arn TEXT,
    access_key_id TEXT,
    username TEXT,
    error_code TEXT,  -- NULL when the request succeeded
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL  -- SHA-256(prev_hash || event_json)
);
CREATE INDEX audit_by_account ON audit_records (account_id, seq);
CREATE INDEX audit_by_event_name ON audit_records (account_id, event_name, seq);
CREATE INDEX audit_by_principal ON audit_records (principal_arn, seq);
CREATE INDEX audit_by_access_key ON audit_records (access_key_id, seq);
CREATE INDEX audit_by_username ON audit_records (username, seq);
CREATE INDEX audit_by_event_id ON audit_records (event_id);
CREATE INDEX audit_by_time ON audit_records (event_time);

-- Every resource of an event under its ARN and its short name (key id or alias name), so
-- "which events touched this key" is one index range, newest first.
CREATE TABLE audit_resources (
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (name, seq)
) WITHOUT ROWID;
CREATE INDEX audit_resources_by_seq ON audit_resources (seq);

CREATE TABLE audit_checkpoints (
    seq INTEGER PRIMARY KEY,  -- the record the checkpoint vouches for
    hash BLOB NOT NULL,
    signature BLOB NOT NULL,  -- HMAC under the HSM's checkpoint key
    created REAL NOT NULL
);

-- After a prune: the signed (seq, hash) of the last pruned record, where the chain resumes.
CREATE TABLE audit_anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    signature BLOB NOT NULL,
    created REAL NOT NULL
);

CREATE TABLE audit_meta (
    name TEXT PRIMARY KEY,
    value REAL NOT NULL
) WITHOUT ROWID;
"""

# Version 2 makes an append one statement and cheap to commit (every record is synced before
# its request is answered, so each commit's pages count):
# - Each record carries its resource names (``resources``, a JSON array) and a trigger files
#   them in audit_resources, so records and their index go in with one INSERT: one round
#   trip to SQLite's thread and one implicit transaction per batch. Pruning finds a record's
#   index entries through the same column, so audit_resources_by_seq goes.
# - Fewer B-trees to touch per commit: lookups by account, event name, principal, access key
#   and user name now walk the records newest first (they match often, or belong to slow,
#   rare queries: LookupEvents, the CLI). Kept: by resource (GetKeyLastUsage, ResourceName),
#   by event id (a point lookup) and by time (pruning, time ranges).
_V2 = """
ALTER TABLE audit_records ADD COLUMN resources TEXT;  -- JSON array of the resource names
UPDATE audit_records SET resources = (
    SELECT json_group_array(res.name) FROM audit_resources AS res WHERE res.seq = audit_records.seq
) WHERE seq IN (SELECT seq FROM audit_resources);
DROP INDEX audit_resources_by_seq;
DROP INDEX audit_by_account;
DROP INDEX audit_by_event_name;
DROP INDEX audit_by_principal;
DROP INDEX audit_by_access_key;
DROP INDEX audit_by_username;
CREATE TRIGGER audit_records_resources AFTER INSERT ON audit_records
WHEN NEW.resources IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO audit_resources (name, seq)
    SELECT value, NEW.seq FROM json_each(NEW.resources);
END;
"""

migrations: list[tuple[int, str]] = [
    (1, _V1),
    (2, _V2),
]


def latest_version() -> int:
    """Return the audit schema version this code writes."""
    return migrations[-1][0]


def _refuse_newer(found: int, path: pathlib.Path) -> StoreVersionError:
    return StoreVersionError(
        f"audit database {path} has schema version {found}, newer than the "
        f"{latest_version()} this kms_actors knows; refusing to open it (upgrade kms_actors, "
        "never downgrade the data)"
    )


async def _user_version(conn: Connection) -> int:
    rows = await conn.execute("PRAGMA user_version")
    return int(rows[0][0])


async def migrate_audit(db: Database, path: pathlib.Path) -> int:
    """Bring the audit database up to the latest schema version and return that version.

    Raises:
        StoreVersionError: the database is newer than this code.
    """
    async with db.reading() as conn:
        found = await _user_version(conn)
    if found > latest_version():
        raise _refuse_newer(found, path)
    for version, sql in migrations:
        if version <= found:
            continue
        async with db.transaction() as conn:
            # Re-read under the write lock: another process may have migrated meanwhile.
            found = await _user_version(conn)
            if found > latest_version():
                raise _refuse_newer(found, path)
            if version > found:
                for statement in split_statements(sql):
                    await conn.execute(statement)
                # `version` is an int from this module, never outside input.
                await conn.execute(f"PRAGMA user_version = {int(version)}")
        found = max(found, version)
    return found
