"""How much an audit query reads: a hot key's latest events, paging and id lookups cost the
same however long its history, and no query sorts (the walks follow the indexes' order)."""

from __future__ import annotations

import contextlib
import pathlib
import random
import sqlite3
from collections.abc import Iterator, Sequence

import msgspec
import pytest

from kms_actors.store import GENESIS_HASH, AuditFilter, AuditRecord, AuditStore
from kms_actors.store._audit_query import query_sql

from .audit_index_support import Ids, random_batch
from .audit_support import ACCOUNT, KEY_ARN, KEY_ID, OTHER_KEY_ARN, START

pytestmark = pytest.mark.anyio


@contextlib.contextmanager
def reader(path: pathlib.Path) -> Iterator[sqlite3.Connection]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        yield conn


def steps(conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> tuple[int, int]:
    """Run a query; return its row count and roughly how many VM instructions it took."""
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0

    conn.set_progress_handler(tick, 100)
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.set_progress_handler(None, 0)
    return len(rows), count * 100


# How a hot query's work may grow with the history: not at all ("flat"); up to the records
# sharing an event id's index key, the 256 ids of its sequence ("key"); or by a glance at each
# newer batch it passes over, never reading their records ("skip").
Hot = tuple[AuditFilter, int | None, bool, int, str]


def hot_queries(newest: AuditRecord) -> list[Hot]:
    """Queries over a hot key's history, with how many records each finds."""
    recent = newest.event_time - 100
    old = START + 100  # among the first batches
    miss = newest.event_id[:-2] + "zz"  # the same index key, not stored
    return [
        (AuditFilter(resource=KEY_ID), None, True, 50, "flat"),
        (AuditFilter(resource=KEY_ID), None, False, 50, "flat"),
        (AuditFilter(resource=KEY_ARN), newest.seq - 500, True, 50, "flat"),
        (AuditFilter(resource=KEY_ARN), newest.seq - 500, False, 50, "flat"),
        (AuditFilter(resource=KEY_ID, start=recent), None, True, 50, "flat"),
        (AuditFilter(start=recent, account_id=ACCOUNT), None, True, 50, "flat"),
        (AuditFilter(resource=OTHER_KEY_ARN), None, True, 1, "flat"),
        (AuditFilter(event_id=newest.event_id), None, True, 1, "key"),
        (AuditFilter(event_id=miss), None, True, 0, "key"),
        (AuditFilter(resource=KEY_ID, end=old), None, True, 50, "skip"),
        (AuditFilter(end=old, account_id=ACCOUNT), None, True, 50, "skip"),
    ]


def work(path: pathlib.Path, newest: AuditRecord) -> tuple[list[int], int]:
    """Return the work of each hot query, and of one scan of the records."""
    found = []
    with reader(path) as conn:
        for where, after, descending, rows, _ in hot_queries(newest):
            sql, params = query_sql(where, limit=50, after_seq=after, descending=descending)
            plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            assert not any("TEMP B-TREE" in row[-1] for row in plan), plan
            count, steps_taken = steps(conn, sql, params)
            assert count == rows, where
            found.append(steps_taken)
        _, scan = steps(conn, "SELECT count(*) FROM audit_records WHERE event_id = ''", ())
    return found, scan


async def test_a_hot_key_is_read_newest_first(store: AuditStore) -> None:
    """The work of a key's latest events, of paging and of id lookups, does not grow with
    the key's history (the other key's only event is in the fourth batch)."""
    rng = random.Random(7)
    ids = Ids(rng)
    head = (0, GENESIS_HASH)
    measured = []
    for number in range(240):
        batch = random_batch(rng, ids, 32, head)
        # Names are not hashed: the records stay chained.
        batch = [msgspec.structs.replace(r, resources=(KEY_ARN, KEY_ID)) for r in batch]
        if number == 3:
            batch[5] = msgspec.structs.replace(batch[5], resources=(OTHER_KEY_ARN,))
        await store.append(batch)
        head = (batch[-1].seq, batch[-1].hash)
        if number + 1 in (60, 240):
            measured.append(work(store.path, batch[-1]))
    (small, small_scan), (large, large_scan) = measured
    assert large_scan > 3 * small_scan  # the measure sees a scan grow with the records
    for query, before, after in zip(hot_queries(batch[-1]), small, large, strict=True):
        if query[-1] == "flat":
            assert after < 1.3 * before + 300, (query, before, after)
        else:  # less than a bare pass over the records (a few steps each)
            share = 4 if query[-1] == "key" else 2
            assert after < large_scan / share, (query, after, large_scan)
