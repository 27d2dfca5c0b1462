"""The audit repository: hash-chained event records in their own SQLite file.

``open_audit_store(data_dir)`` opens ``<data_dir>/audit.sqlite3`` (WAL, ``synchronous=FULL``
by default), separate from the key metadata so audit writes never wait on key writes. The store
keeps what the audit layer computed: each record's exact JSON bytes, its place in the chain
(``seq``, ``prev_hash``, ``hash``), a few copied fields to query by and the names it is found
under by resource. It checks the chain's continuity when appending (against the head it last
wrote or read; another writer's records take the next ``seq``, so two writers cannot fork the
chain) but never hashes or signs anything. A batch is one transaction of three INSERTs: its
records, its seq range and time span, its names (``_audit_migrations``); the indexes are per
batch and queries check the records in the ranges they give (``_audit_query``).

Besides the records there are signed checkpoints, and after a prune an anchor: the signed
``(seq, hash)`` of the last pruned record, from which the chain resumes.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Literal

import anyio.to_thread
import msgspec

from kms_actors.domain.clock import Clock, SystemClock
from kms_actors.store._audit_migrations import (
    CHECKPOINT_COLUMNS,
    COLUMNS,
    INSERT_CHECKPOINT,
    PRUNE_BATCHES,
    PRUNE_INDEX,
    RECORD_COLUMNS,
    UPSERT_ANCHOR,
    batch_inserts,
    migrate_audit,
)
from kms_actors.store._audit_query import CUT_SEQ, query_sql
from kms_actors.store._db import Connection, Database, Params, Row, connect
from kms_actors.store._errors import StoreError

AUDIT_DATABASE_NAME = "audit.sqlite3"
GENESIS_HASH = bytes(32)  # the prev_hash of record 1


class AuditChainConflict(StoreError):
    """The records do not continue the stored chain (another writer appended, or a bug)."""


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One stored audit event and its place in the hash chain.

    ``resources`` are the names the event is found under by resource (ARNs, key ids, alias
    names); they are written with the record and not read back (reads leave it empty).
    """

    seq: int
    event_time: float
    event_json: bytes
    account_id: str
    region: str
    event_name: str
    event_id: str
    read_only: bool
    key_arn: str | None = None
    principal_arn: str | None = None
    access_key_id: str | None = None
    username: str | None = None
    error_code: str | None = None
    prev_hash: bytes
    hash: bytes
    resources: tuple[str, ...] = ()


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A signed statement "record ``seq`` has hash ``hash``" (also the shape of the anchor)."""

    seq: int
    hash: bytes
    signature: bytes
    created: float


class AuditFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What ``AuditStore.query`` selects; every field left None matches everything.

    ``resource`` is an ARN or short name (key id, ``alias/...``) of any resource of the event;
    ``start`` and ``end`` bound ``event_time`` inclusively; ``succeeded`` keeps only events
    without (True) or with (False) an error code; ``has_key`` keeps events naming a KMS key.
    """

    account_id: str | None = None
    region: str | None = None
    start: float | None = None
    end: float | None = None
    resource: str | None = None
    principal_arn: str | None = None
    event_name: str | None = None
    event_names: tuple[str, ...] | None = None
    event_id: str | None = None
    access_key_id: str | None = None
    username: str | None = None
    read_only: bool | None = None
    succeeded: bool | None = None
    has_key: bool | None = None


# Every AuditRecord field but ``resources`` is a column of audit_records, in field order.
_FIELDS = RECORD_COLUMNS
_BLOBS = ("event_json", "prev_hash", "hash")
_PREV, _HASH = _FIELDS.index("prev_hash"), _FIELDS.index("hash")

# A record as ``append_rows`` takes it: its column values in ``_FIELDS`` order, then its
# resource names as a JSON array (text; None when it has none).
RecordRow = tuple[object, ...]

# A row that takes a key another writer's batch holds: the chain moved on under this store.
_CHAIN_KEYS = ("audit_records.seq", "audit_batches.first_seq", "audit_index.name")


def _record(row: Row) -> AuditRecord:
    values = dict(zip(_FIELDS, row, strict=True))
    for name in _BLOBS:
        # Bytes edited with SQL text functions come back as text; compare them as bytes.
        if isinstance(values[name], str):
            values[name] = values[name].encode()
    # Lax conversion turns SQLite's 0/1 back into ``read_only``'s bool.
    return msgspec.convert(values, AuditRecord, strict=False)


def _row(record: AuditRecord) -> RecordRow:
    names = msgspec.json.encode(record.resources).decode() if record.resources else None
    return (*msgspec.structs.astuple(record)[:-1], names)


def _checkpoint(row: Row) -> Checkpoint:
    return Checkpoint(seq=row[0], hash=bytes(row[1]), signature=bytes(row[2]), created=row[3])


async def _head(conn: Connection) -> tuple[int, bytes] | None:
    rows = await conn.execute("SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1")
    if not rows:
        rows = await conn.execute("SELECT seq, hash FROM audit_anchor WHERE id = 1")
    return (int(rows[0][0]), bytes(rows[0][1])) if rows else None


def _check_links(rows: Sequence[RecordRow], head: tuple[int, bytes] | None) -> None:
    seq, prev = head if head is not None else (0, GENESIS_HASH)
    for row in rows:
        if row[0] != seq + 1 or row[_PREV] != prev:
            raise AuditChainConflict(f"record {row[0]} does not follow record {seq} of the chain")
        seq, prev = row[0], row[_HASH]  # type: ignore[assignment]


class AuditStore:
    """Audit records, checkpoints and the prune anchor in one SQLite database.

    Every write method has committed before it returns; ``append`` writes a whole batch (and
    its checkpoint) in one transaction, so one fsync covers the batch.
    """

    def __init__(self, db: Database, path: pathlib.Path, schema_version: int) -> None:
        self._db = db
        self.path = path
        self.schema_version = schema_version
        # The head this store last wrote, so an append need not read it back. Another
        # writer that appended meanwhile is still caught: its records hold our next seq.
        self._head: tuple[int, bytes] | None = None

    async def append(
        self, records: Sequence[AuditRecord], checkpoint: Checkpoint | None = None
    ) -> None:
        """Append records (and a checkpoint) in one transaction.

        Raises:
            AuditChainConflict: the first record does not follow the stored head, or the
                records do not follow each other (nothing is written).
        """
        await self.append_rows([_row(record) for record in records], checkpoint)

    async def append_rows(
        self, rows: Sequence[RecordRow], checkpoint: Checkpoint | None = None
    ) -> None:
        """Append records given as column values (and a checkpoint) in one transaction.

        Each row holds a record's columns in ``AuditRecord`` field order (without
        ``resources``), then its resource names as a JSON array (or None).

        Raises:
            AuditChainConflict: as ``append``.
        """
        head, self._head = self._head, None  # unknown until this commits
        if head is not None:
            _check_links(rows, head)
        statements = batch_inserts(rows) if rows else []
        try:
            async with self._db.transaction() as conn:
                if head is None:
                    _check_links(rows, await _head(conn))
                # The records first: a stale head shows as their seq taken.
                for sql, params in statements:
                    await conn.execute(sql, params)
                if checkpoint is not None:
                    await self._insert_checkpoint(conn, checkpoint)
        except sqlite3.IntegrityError as exc:
            message = str(exc)
            if not message.startswith("UNIQUE") or not any(k in message for k in _CHAIN_KEYS):
                raise
            raise AuditChainConflict("another writer has extended the chain") from exc
        if rows:
            self._head = (int(rows[-1][0]), bytes(rows[-1][_HASH]))  # type: ignore[call-overload]
        else:
            self._head = head

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a checkpoint; it must name a stored record with that hash.

        Raises:
            AuditChainConflict: no stored record has that seq and hash.
        """
        async with self._db.transaction() as conn:
            rows = await conn.execute(
                "SELECT hash FROM audit_records WHERE seq = ?", (checkpoint.seq,)
            )
            if not rows or bytes(rows[0][0]) != checkpoint.hash:
                raise AuditChainConflict(f"no record {checkpoint.seq} with that hash")
            await self._insert_checkpoint(conn, checkpoint)

    @staticmethod
    async def _insert_checkpoint(conn: Connection, checkpoint: Checkpoint) -> None:
        await conn.execute(
            INSERT_CHECKPOINT,
            (checkpoint.seq, checkpoint.hash, checkpoint.signature, checkpoint.created),
        )

    async def last(self) -> tuple[int, bytes] | None:
        """Return ``(seq, hash)`` of the newest record (or of the anchor), or None if empty."""
        async with self._db.reading() as conn:
            return await _head(conn)

    async def query(
        self,
        where: AuditFilter | None = None,
        *,
        limit: int = 50,
        after_seq: int | None = None,
        descending: bool = True,
    ) -> list[AuditRecord]:
        """Return up to ``limit`` matching records, newest first unless ``descending=False``.

        ``after_seq`` continues a previous page: only records past it in the page order.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        sql, params = query_sql(
            where or AuditFilter(), limit=limit, after_seq=after_seq, descending=descending
        )
        return [_record(row) for row in await self._db.fetch(sql, params)]

    async def iterate(
        self, from_seq: int = 0, *, page: int = 1000
    ) -> AsyncGenerator[AuditRecord, None]:
        """Yield every record with ``seq >= from_seq`` in chain order, reading page by page."""
        after = from_seq - 1
        while True:
            rows = await self._db.fetch(
                f"SELECT {COLUMNS} FROM audit_records WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
                (after, page),
            )
            for row in rows:
                yield _record(row)
            if len(rows) < page:
                return
            after = rows[-1][0]

    async def get(self, seq: int) -> AuditRecord | None:
        """Return the record at ``seq``, or None."""
        rows = await self._db.fetch(
            f"SELECT {COLUMNS} FROM audit_records WHERE seq = ?",  # noqa: S608
            (seq,),
        )
        return _record(rows[0]) if rows else None

    async def count(self) -> int:
        """Return the number of stored records."""
        rows = await self._db.fetch("SELECT count(*) FROM audit_records")
        return int(rows[0][0])

    async def checkpoints(self, from_seq: int = 0) -> list[Checkpoint]:
        """Return the checkpoints with ``seq >= from_seq``, oldest first."""
        rows = await self._db.fetch(
            f"SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq >= ? ORDER BY seq",  # noqa: S608
            (from_seq,),
        )
        return [_checkpoint(row) for row in rows]

    async def last_checkpoint(self) -> Checkpoint | None:
        """Return the newest checkpoint, or None."""
        rows = await self._db.fetch(
            f"SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"  # noqa: S608
        )
        return _checkpoint(rows[0]) if rows else None

    async def anchor(self) -> Checkpoint | None:
        """Return the prune anchor (the last pruned record's signed hash), or None."""
        rows = await self._db.fetch(
            f"SELECT {CHECKPOINT_COLUMNS} FROM audit_anchor WHERE id = 1"  # noqa: S608
        )
        return _checkpoint(rows[0]) if rows else None

    async def cut_seq(self, before_time: float) -> int:
        """Return the last seq of the chain prefix older than ``before_time`` (0 if none).

        The prefix ends just before the first record at or after ``before_time``, so events
        are pruned in chain order even if their times are not monotonic.
        """
        async with self._db.reading() as conn:
            rows = await conn.execute(CUT_SEQ, (before_time,))
            if rows:
                return int(rows[0][0]) - 1
            head = await _head(conn)
        return head[0] if head is not None else 0

    async def prune(self, anchor: Checkpoint, *, tracking_start: float) -> int:
        """Delete records ``seq <= anchor.seq`` and keep ``anchor`` to resume the chain.

        Checkpoints up to the anchor go too, and so do the batches (and their index entries)
        that end at or below it. ``tracking_start`` (epoch seconds) is when the remaining
        history begins. Returns how many records were deleted.

        Raises:
            AuditChainConflict: no stored record has the anchor's seq and hash.
        """
        async with self._db.transaction() as conn:
            rows = await conn.execute("SELECT hash FROM audit_records WHERE seq = ?", (anchor.seq,))
            if not rows or bytes(rows[0][0]) != anchor.hash:
                raise AuditChainConflict(f"no record {anchor.seq} with the anchor's hash")
            count = await conn.execute(
                "SELECT count(*) FROM audit_records WHERE seq <= ?", (anchor.seq,)
            )
            await conn.execute(PRUNE_INDEX, (anchor.seq,))
            await conn.execute(PRUNE_BATCHES, (anchor.seq,))
            for table in ("audit_checkpoints", "audit_records"):
                # Table names are constants of this loop.
                await conn.execute(f"DELETE FROM {table} WHERE seq <= ?", (anchor.seq,))  # noqa: S608
            await conn.execute(
                UPSERT_ANCHOR,
                (anchor.seq, anchor.hash, anchor.signature, anchor.created),
            )
            await conn.execute(
                "INSERT OR REPLACE INTO audit_meta (name, value) VALUES ('tracking_start', ?)",
                (tracking_start,),
            )
        return int(count[0][0])

    async def tracking_start(self) -> float:
        """Return since when the stored history is complete (creation, or the last prune)."""
        rows = await self._db.fetch(
            "SELECT name, value FROM audit_meta WHERE name IN ('created', 'tracking_start')"
        )
        values = {str(name): float(value) for name, value in rows}
        return values.get("tracking_start", values["created"])

    async def execute_for_tests(self, sql: str, params: Params = ()) -> list[Row]:
        """Run raw SQL in a write transaction, bypassing every check: for tamper tests only."""
        self._head = None
        async with self._db.transaction() as conn:
            return await conn.execute(sql, params)

    def data_files(self) -> list[pathlib.Path]:
        """Return the database files that exist now (main, ``-wal``, ``-shm``), for scans."""
        candidates = [self.path, *(self.path.with_name(self.path.name + s) for s in _SUFFIXES)]
        return [path for path in candidates if path.exists()]


_SUFFIXES = ("-wal", "-shm")


def _prepare(data_dir: pathlib.Path) -> pathlib.Path:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / AUDIT_DATABASE_NAME
    # Create the file 0600 before SQLite would create it 0644 (less the umask).
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    return path


@contextlib.asynccontextmanager
async def open_audit_store(
    data_dir: pathlib.Path,
    *,
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
    clock: Clock | None = None,
    inline: bool = False,
) -> AsyncIterator[AuditStore]:
    """Open (creating and migrating if needed) the audit store in ``data_dir/audit.sqlite3``.

    ``synchronous="FULL"`` (the default) syncs the WAL at every commit, so a committed event
    survives power loss; ``"NORMAL"`` survives a crash of the process but may lose the last
    commits on power loss. Works on asyncio and Trio, like ``open_store``. ``inline=True``
    runs SQLite on the event loop's thread, blocking it (``store._db``: the audit writer
    process does this).

    Raises:
        StoreVersionError: the database was written by a newer schema; it is left untouched.
        StoreError: the database cannot be switched to WAL mode.
    """
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    path = await anyio.to_thread.run_sync(_prepare, data_dir)
    now = (clock or SystemClock()).now()
    async with connect(path, inline=inline) as conn:
        db = Database(conn)
        version = await migrate_audit(db, path)
        async with db.transaction() as writer:
            await writer.execute(
                "INSERT OR IGNORE INTO audit_meta (name, value) VALUES ('created', ?)", (now,)
            )
        async with db.reading() as reader:
            mode = await reader.execute("PRAGMA journal_mode = WAL")
            # A constant from the two allowed above, never outside input.
            await reader.execute(f"PRAGMA synchronous = {synchronous}")
        if str(mode[0][0]).lower() != "wal":
            raise StoreError(f"database {path} cannot use WAL mode (journal mode {mode[0][0]})")
        yield AuditStore(db, path, version)
