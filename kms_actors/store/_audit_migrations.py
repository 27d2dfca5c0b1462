"""The audit database's schema: numbered migrations, and the SQL bound to the latest one.

The audit log lives in its own SQLite file, so it has its own version sequence (kept in
``PRAGMA user_version`` of that file), applied like the key store's: each migration in one
transaction with its version bump, and a database newer than this code is refused.

The statements ``AuditStore`` writes with (a batch's INSERTs, pruning) are built here, next
to the schema they depend on, so that a schema change and the SQL it needs are one change in
one place; so are the queries, in ``_audit_query``.

Since version 3 the indexes are per batch (why: the comment on ``_V3``). A batch is three
INSERTs in one transaction: its records (one statement, in one of a few sizes that stay
prepared), its row in ``audit_batches`` (seq range, time span), and its names in
``audit_index`` (each distinct resource name and event key once, with the batch's range).

To change the schema, append a migration; never edit one that has shipped.
"""

from __future__ import annotations

import functools
import itertools
import pathlib
from collections.abc import Sequence
from typing import Any

import msgspec

from kms_actors.store._db import Database
from kms_actors.store._migrations import apply_migrations

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

# Version 3 indexes per batch, not per record: the per-record index entries cost more than
# the record. At batches of 32 (1.1 KB events, synchronous=FULL) a record cost ~18.5 us wall
# / 13.6 us CPU, of which the trigger filing its names took ~5 us and the event id and time
# indexes ~1 us each; the bare row insert ~12 us / 8.4 us. Now a batch adds one row to
# audit_batches (its seq range and time span) and one row to audit_index per distinct name
# among its records: their resource names (a key ARN filed under its key id, which every
# record naming the ARN also lists: ``index_name``; with 100 keys in turn, a batch's names
# are each a B-tree page to rewrite, and this took the writer from ~60 to ~35 us of CPU per
# event, against ~45 for version 2), and their event ids cut to ``event_key`` (the
# service names events ``<24-char random prefix><12 hex counter>``, so a batch's ids share
# one or two keys). Measured the same way, a record now costs ~14.6 us / 9.9 us at batches of
# 32 and ~9.1 us / 6.7 us at 128 (bare: 12.9 / 8.5 and 8.5 / 6.3; version 2: 19.4 / 13.7 and
# 12.8 / 10.1). What remains over the bare insert is mostly one more WAL page per distinct
# name per batch (a name's entries sit together, at the end of its run in audit_index).
# A lookup walks the candidate ranges and checks every record in them exactly, so the
# records stay the truth and the answers are the same as before (``_audit_query``).
# Existing records become ranges of 32 consecutive seqs, indexed like batches (this reads
# every record once).
_V3 = """
CREATE TABLE audit_batches (
    first_seq INTEGER PRIMARY KEY,  -- the batch's records are first_seq..last_seq
    last_seq INTEGER NOT NULL,
    min_time REAL NOT NULL,  -- the earliest and latest event_time among them
    max_time REAL NOT NULL
);
-- Every name a batch's records are found under (resource names; event keys "event:..."),
-- once per batch: the seq ranges to walk for "this key's events", newest first.
CREATE TABLE audit_index (
    name TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (name, first_seq)
) WITHOUT ROWID;
INSERT INTO audit_batches (first_seq, last_seq, min_time, max_time)
SELECT min(seq), max(seq), min(event_time), max(event_time) FROM audit_records
GROUP BY (seq - 1) / 32;
INSERT OR IGNORE INTO audit_index (name, first_seq, last_seq)
SELECT CASE WHEN CAST(n.value AS TEXT) GLOB 'arn:*:key/*'
    THEN substr(CAST(n.value AS TEXT), instr(CAST(n.value AS TEXT), ':key/') + 5)
    ELSE CAST(n.value AS TEXT) END, b.first_seq, b.last_seq
FROM audit_batches AS b
CROSS JOIN audit_records AS r ON r.seq BETWEEN b.first_seq AND b.last_seq,
    json_each(CASE WHEN json_valid(r.resources) THEN r.resources END) AS n
WHERE n.value IS NOT NULL
UNION
SELECT 'event:' || substr(r.event_id, 1, 34), b.first_seq, b.last_seq
FROM audit_batches AS b
CROSS JOIN audit_records AS r ON r.seq BETWEEN b.first_seq AND b.last_seq;
DROP TRIGGER audit_records_resources;
DROP TABLE audit_resources;
DROP INDEX audit_by_event_id;
DROP INDEX audit_by_time;
"""

migrations: list[tuple[int, str]] = [
    (1, _V1),
    (2, _V2),
    (3, _V3),
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
# Pruning drops the batches (and their index entries) that end at or below the anchor; one
# that straddles it keeps its range, whose lookups find only the records left. The index
# has no order by seq (no B-tree to keep up per batch), so its pruning reads all of it.
PRUNE_INDEX = "DELETE FROM audit_index WHERE last_seq <= ?1"
PRUNE_BATCHES = "DELETE FROM audit_batches WHERE first_seq <= ?1 AND last_seq <= ?1"

# The event id key: the id less its last two characters. The service's ids end in a hex
# counter, so a key spans 256 consecutive events (a batch of 32 has one or two keys, and a
# lookup checks a few hundred records); a random uuid4 gets a key of its own.
EVENT_KEY_PREFIX = "event:"
EVENT_KEY_LENGTH = 34


def event_key(event_id: str) -> str:
    """Return the audit_index name an event id is found under (as version 3 computes it)."""
    return EVENT_KEY_PREFIX + event_id[:EVENT_KEY_LENGTH]


# A batch's records go in as one INSERT. Statements come in a few sizes, so SQLite's
# statement cache keeps them all prepared; a batch fills the smallest that fits with rows of
# zeros (seq 0, which the WHERE drops; sqlite3 binds an int much faster than None). The
# largest stays under SQLite's 32766 parameters. A row is the ``RECORD_COLUMNS`` values,
# then ``resources`` (JSON text or None).
#
# The multi-row INSERTs say OR ROLLBACK: a conflict fails the whole append anyway (the chain
# moved on: ``AuditChainConflict``), and then SQLite keeps no statement journal, the copy of
# every page a statement changes inside a transaction, so that it alone can be undone. For
# the index entries, which land in the middle of their B-tree, that copy cost ~20 us a batch.
_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
_WIDTH = len(RECORD_COLUMNS) + 1
_TIME = RECORD_COLUMNS.index("event_time")
_EVENT_ID = RECORD_COLUMNS.index("event_id")

# Then the batch's row, and its index entries in one statement: ``?3`` is a JSON array of
# the records' distinct ``resources`` (and of their event keys), each read as the version 2
# trigger read a record's names: ``json_each`` of it (a bare scalar is one name).
INSERT_BATCH = (
    "INSERT INTO audit_batches (first_seq, last_seq, min_time, max_time) VALUES (?, ?, ?, ?)"
)
INSERT_INDEX = (
    "INSERT OR ROLLBACK INTO audit_index (name, first_seq, last_seq)"
    " SELECT DISTINCT iif(v GLOB 'arn:*:key/*', substr(v, instr(v, ':key/') + 5), v), ?1, ?2"
    " FROM (SELECT CAST(n.value AS TEXT) AS v FROM json_each(?3) AS a,"
    " json_each(iif(a.type IN ('array', 'object'), a.value, json_quote(a.value))) AS n"
    " WHERE n.value IS NOT NULL)"
)


def index_name(resource: str) -> str:
    """Return the audit_index name ``resource`` is found under (as ``INSERT_INDEX`` files it).

    A key ARN is filed under its key id, which the writer also lists for every record naming
    the ARN: one index entry per key and batch instead of two (with many keys per batch each
    entry is a page of its own to rewrite at commit; measured with 100 keys this halves the
    index's cost). Lookups still check every record against the name asked for.
    """
    if resource.startswith("arn:") and ":key/" in resource[4:]:
        return resource.split(":key/", 1)[1]
    return resource


@functools.cache
def _insert_sql(rows: int) -> str:
    values = ", ".join(["(" + ", ".join("?" * _WIDTH) + ")"] * rows)
    # Column names are constants of this module; values are parameters.
    return (
        f"INSERT OR ROLLBACK INTO audit_records ({COLUMNS}, resources)"  # noqa: S608
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


def batch_inserts(rows: Sequence[Sequence[Any]]) -> list[tuple[str, Sequence[object]]]:
    """Return the statements that append ``rows`` (at least one) as one batch, in order."""
    statements: list[tuple[str, Sequence[object]]] = []
    statements += record_inserts(rows)
    first, last = rows[0][0], rows[-1][0]
    times = [row[_TIME] for row in rows]
    statements.append((INSERT_BATCH, (first, last, min(times), max(times))))
    texts = {row[-1] for row in rows}  # the writer shares one text between a key's events
    texts.discard(None)
    ids = {row[_EVENT_ID][:EVENT_KEY_LENGTH] for row in rows}
    keys = msgspec.json.encode([EVENT_KEY_PREFIX + key for key in ids]).decode()
    statements.append((INSERT_INDEX, (first, last, "[" + ",".join([*texts, keys]) + "]")))
    return statements
