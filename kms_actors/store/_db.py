"""The database adapter: one SQLite connection behind a tiny async interface.

Three backends offer the same three calls (``execute``, ``executemany``, ``close``):

* on asyncio, an ``aiosqlite`` connection, which runs sqlite3 on its own thread;
* anywhere else (Trio, where aiosqlite's asyncio futures cannot be awaited), a plain
  ``sqlite3`` connection driven through ``anyio.to_thread.run_sync`` with a capacity limiter of
  one, so exactly one call touches the connection at a time (hence ``check_same_thread=False``:
  the calls may land on different worker threads, but never concurrently);
* ``inline=True``: a plain ``sqlite3`` connection called on the event loop's own thread,
  blocking it. Only for a process that has nothing else to do meanwhile (the audit writer
  process): it saves the thread hand-overs, which cost more than a small write.

``Database`` adds what the repositories rely on: one statement group at a time on the shared
connection, and write transactions that are committed (or rolled back) before they return.
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol, TypeVar, cast

import aiosqlite
import anyio
import anyio.to_thread

from kms_actors.domain.eventloop import on_asyncio

T = TypeVar("T")

Row = tuple[Any, ...]
Params = Sequence[object]

BUSY_TIMEOUT_MS = 5_000

# Pragmas applied to every connection. `foreign_keys` and `synchronous` are per connection and
# `foreign_keys` is a no-op inside a transaction, so they run first, outside any transaction.
_PRAGMAS = (
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = FULL",
)


class Connection(Protocol):
    """The calls the store makes on a SQLite connection (autocommit mode, explicit BEGIN)."""

    async def execute(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one statement and return all its rows (none for most writes)."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement once per parameter row."""
        ...

    async def close(self) -> None:
        """Close the connection; pending work finishes first."""
        ...


class _AiosqliteConnection:
    """The asyncio backend: aiosqlite's connection thread does the work."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> list[Row]:
        rows = await self._conn.execute_fetchall(sql, params)
        # Without a row factory the rows are plain tuples; aiosqlite annotates them sqlite3.Row.
        return cast("list[Row]", list(rows))

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        async with self._conn.executemany(sql, rows):
            pass

    async def close(self) -> None:
        await self._conn.close()


class _ThreadConnection:
    """The fallback backend (Trio): sqlite3 calls on worker threads, one at a time."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._limiter = anyio.CapacityLimiter(1)

    async def _run(self, func: Callable[..., T], *args: object) -> T:
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)

    def _fetchall(self, sql: str, params: Params) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    async def execute(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._run(self._fetchall, sql, params)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        await self._run(self._conn.executemany, sql, rows)

    async def close(self) -> None:
        await self._run(self._conn.close)


class _InlineConnection:
    """The inline backend: sqlite3 calls on the calling thread (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._conn.executemany(sql, rows)

    async def close(self) -> None:
        self._conn.close()


def _connect_sqlite3(path: pathlib.Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


@contextlib.asynccontextmanager
async def connect(path: pathlib.Path, *, inline: bool = False) -> AsyncIterator[Connection]:
    """Open the database file with the backend that fits the running event loop (or inline).

    The connection is in autocommit mode (``isolation_level=None``): the store issues
    ``BEGIN IMMEDIATE``/``COMMIT`` itself, so sqlite3 never opens a transaction behind its back.
    """
    conn: Connection
    if inline:
        conn = _InlineConnection(_connect_sqlite3(path))
    elif on_asyncio():
        conn = _AiosqliteConnection(await aiosqlite.connect(path, isolation_level=None))
    else:
        conn = _ThreadConnection(await anyio.to_thread.run_sync(_connect_sqlite3, path))
    try:
        for pragma in _PRAGMAS:
            await conn.execute(pragma)
        yield conn
    finally:
        # Shielded: an unclosed aiosqlite connection leaves a non-daemon thread behind.
        with anyio.CancelScope(shield=True):
            await conn.close()


class Database:
    """The shared connection, used by one statement group at a time.

    Reads take the lock too: on a single connection a read running between two statements of
    another task's transaction would see that transaction half done.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = anyio.Lock()

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one read statement and return its rows."""
        async with self._lock:
            return await self._conn.execute(sql, params)

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[Connection]:
        """Hold the connection for several reads that must not interleave with a write."""
        async with self._lock:
            yield self._conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """Run the body as one write transaction, committed before the block is left.

        The transaction runs shielded from cancellation: a caller that goes away loses only
        its reply, and the write is committed or rolled back, never left open on the shared
        connection. If the body (or the commit) raises, everything is rolled back.
        """
        async with self._lock:
            with anyio.CancelScope(shield=True):
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    await self._conn.execute("COMMIT")
                except BaseException:
                    # A failed COMMIT may already have ended the transaction; then there is
                    # nothing to roll back and the original error is the one to report.
                    with contextlib.suppress(sqlite3.OperationalError):
                        await self._conn.execute("ROLLBACK")
                    raise
