"""The audit database's schema: numbered migrations, and the SQL bound to the latest one.

The audit log lives in its own SQLite file, so it has its own version sequence (kept in
``PRAGMA user_version`` of that file), applied like the key store's: each migration in one
transaction with its version bump, and a database newer than this code is refused.

The statements ``AuditStore`` runs against the tables (the batch INSERT, pruning, queries)
are built here, next to the schema they depend on, so that a schema change and the SQL it
needs are one change in one place.

To change the schema, append a migration; never edit one that has shipped.
"""

from __future__ import annotations

import functools
import itertools
import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kms_actors.store._db import Database
from kms_actors.store._migrations import apply_migrations

if TYPE_CHECKING:
    from kms_actors.store._audit import AuditFilter

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


async def migrate_audit(db: Database, path: pathlib.Path) -> int:
    """Bring the audit database up to the latest schema version and return that version.

    Raises:
        StoreVersionError: the database is newer than this code.
    """
    return await apply_migrations(db, path, migrations, what="audit database")


# --- SQL bound to the latest schema ----------------------------------------------------------

# The columns of audit_records that ``AuditRecord`` mirrors, in its field order.
RECORD_COLUMNS = (
    "seq",
    "event_time",
    "event_json",
    "account_id",
    "region",
    "event_name",
    "event_id",
    "read_only",
    "key_arn",
    "principal_arn",
    "access_key_id",
    "username",
    "error_code",
    "prev_hash",
    "hash",
)
COLUMNS = ", ".join(RECORD_COLUMNS)
R_COLUMNS = ", ".join(f"r.{name}" for name in RECORD_COLUMNS)
CHECKPOINT_COLUMNS = "seq, hash, signature, created"
INSERT_CHECKPOINT = (
    "INSERT OR REPLACE INTO audit_checkpoints (seq, hash, signature, created) VALUES (?, ?, ?, ?)"
)
UPSERT_ANCHOR = (
    "INSERT OR REPLACE INTO audit_anchor (id, seq, hash, signature, created) VALUES (1, ?, ?, ?, ?)"
)
# A record's index entries are found through its own list of names (version 2).
DELETE_RESOURCES = (
    "DELETE FROM audit_resources WHERE (name, seq) IN (SELECT names.value, r.seq"
    " FROM audit_records AS r, json_each(r.resources) AS names WHERE r.seq <= ?)"
)

# A batch of records goes in as one INSERT (the trigger files the resource names): one trip
# to SQLite's thread, which takes the GIL back once, not once per row. Statements come in a
# few sizes, so SQLite's statement cache keeps them all prepared; a batch fills the smallest
# that fits with rows of zeros (seq 0, which the WHERE drops; sqlite3 binds an int much faster
# than None). The largest stays under SQLite's 32766 parameters. A row is the
# ``RECORD_COLUMNS`` values, then ``resources`` (JSON text or None).
_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
_WIDTH = len(RECORD_COLUMNS) + 1


@functools.cache
def _insert_sql(rows: int) -> str:
    values = ", ".join(["(" + ", ".join("?" * _WIDTH) + ")"] * rows)
    # Column names are constants of this module; values are parameters.
    return (
        f"INSERT INTO audit_records ({COLUMNS}, resources)"  # noqa: S608
        f" SELECT * FROM (VALUES {values}) WHERE column1 > 0"
    )


def record_inserts(rows: Sequence[Sequence[object]]) -> list[tuple[str, list[object]]]:
    """Return the statements (with their parameters) that insert ``rows``, in order."""
    statements = []
    for start in range(0, len(rows), _SIZES[-1]):
        part = rows[start : start + _SIZES[-1]]
        size = next(size for size in _SIZES if size >= len(part))
        params = list(itertools.chain.from_iterable(part))
        params += [0] * (_WIDTH * (size - len(part)))
        statements.append((_insert_sql(size), params))
    return statements


_EQUALS = (
    "account_id",
    "region",
    "principal_arn",
    "event_name",
    "event_id",
    "access_key_id",
    "username",
)


def _where(where: AuditFilter) -> tuple[list[str], list[object]]:
    """Return SQL conditions on ``r`` (audit_records) and their parameters."""
    clauses: list[str] = []
    params: list[object] = []
    for column in _EQUALS:
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"r.{column} = ?")
            params.append(value)
    if where.event_names is not None:
        clauses.append(f"r.event_name IN ({', '.join('?' * len(where.event_names))})")
        params.extend(where.event_names)
    if where.read_only is not None:
        clauses.append("r.read_only = ?")
        params.append(int(where.read_only))
    if where.start is not None:
        clauses.append("r.event_time >= ?")
        params.append(where.start)
    if where.end is not None:
        clauses.append("r.event_time <= ?")
        params.append(where.end)
    if where.succeeded is not None:
        clauses.append("r.error_code IS NULL" if where.succeeded else "r.error_code IS NOT NULL")
    if where.has_key is not None:
        clauses.append("r.key_arn IS NOT NULL" if where.has_key else "r.key_arn IS NULL")
    return clauses, params


def query_sql(
    where: AuditFilter, *, limit: int, after_seq: int | None, descending: bool
) -> tuple[str, list[object]]:
    """Return the SELECT (of ``R_COLUMNS``) behind ``AuditStore.query``, and its parameters."""
    clauses, params = _where(where)
    # With a resource, walk that resource's index newest first (CROSS JOIN fixes the join
    # order), so "the latest events of this key" never scans other keys' events.
    seq = "res.seq" if where.resource is not None else "r.seq"
    if after_seq is not None:
        clauses.append(f"{seq} {'<' if descending else '>'} ?")
        params.append(after_seq)
    if where.resource is not None:
        source = "audit_resources AS res CROSS JOIN audit_records AS r ON r.seq = res.seq"
        clauses.insert(0, "res.name = ?")
        params.insert(0, where.resource)
    else:
        source = "audit_records AS r"
    condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    order = "DESC" if descending else "ASC"
    # Column names and operators are constants of this module; values are parameters.
    sql = f"SELECT {R_COLUMNS} FROM {source}{condition} ORDER BY {seq} {order} LIMIT ?"  # noqa: S608
    return sql, [*params, limit]
