"""The store object and ``open_store``, which owns its database connection."""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import AsyncIterator

import anyio.to_thread

from kms_actors.store._aliases import AliasRepository, TagRepository
from kms_actors.store._db import Database, connect
from kms_actors.store._errors import StoreError
from kms_actors.store._grants import GrantRepository
from kms_actors.store._keys import KeyRepository, MaterialRepository
from kms_actors.store._migrations import migrate

DATABASE_NAME = "kms.sqlite3"


class Store:
    """Key metadata: repositories over one SQLite database.

    Every write method has committed before it returns, and a write that touches several
    rows is one transaction.
    """

    def __init__(self, db: Database, path: pathlib.Path, schema_version: int) -> None:
        self.keys = KeyRepository(db)
        self.materials = MaterialRepository(db)
        self.aliases = AliasRepository(db)
        self.tags = TagRepository(db)
        self.grants = GrantRepository(db)
        self.path = path
        self.schema_version = schema_version

    def data_files(self) -> list[pathlib.Path]:
        """Return the database files that exist now (main, ``-wal``, ``-shm``), for scans."""
        candidates = [self.path, *(self.path.with_name(self.path.name + s) for s in _SUFFIXES)]
        return [path for path in candidates if path.exists()]


_SUFFIXES = ("-wal", "-shm")


def _prepare(data_dir: pathlib.Path) -> pathlib.Path:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / DATABASE_NAME
    # Create the file 0600 before SQLite would create it 0644 (less the umask); SQLite gives
    # the -wal and -shm files the mode of the main file.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    return path


@contextlib.asynccontextmanager
async def open_store(data_dir: pathlib.Path) -> AsyncIterator[Store]:
    """Open (creating and migrating if needed) the store in ``data_dir/kms.sqlite3``.

    The directory is created 0700 if missing. Works on asyncio (aiosqlite) and on Trio (a
    thread-driven sqlite3 connection); the connection is closed when the block is left.

    Raises:
        StoreVersionError: the database was written by a newer schema; it is left untouched.
        StoreError: the database cannot be switched to WAL mode.
    """
    path = await anyio.to_thread.run_sync(_prepare, data_dir)
    async with connect(path) as conn:
        db = Database(conn)
        version = await migrate(db, path)
        async with db.reading() as reader:
            mode = await reader.execute("PRAGMA journal_mode = WAL")
        if str(mode[0][0]).lower() != "wal":
            raise StoreError(f"database {path} cannot use WAL mode (journal mode {mode[0][0]})")
        yield Store(db, path, version)
