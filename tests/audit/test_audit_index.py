"""The audit store's per-batch indexes (schema version 3): what a batch files, and that every
query returns exactly what a scan of the records in seq order would, page by page."""

from __future__ import annotations

import random

import msgspec
import pytest

from kms_actors.store import (
    GENESIS_HASH,
    AuditChainConflict,
    AuditFilter,
    AuditStore,
    Checkpoint,
)

from .audit_index_support import (
    ALIAS_ARN,
    Ids,
    append_random,
    check_queries,
    expected_index,
)
from .audit_support import KEY_ARN, KEY_ID, OTHER_KEY_ARN, OTHER_KEY_ID, START, event
from .test_audit_store import chained

pytestmark = pytest.mark.anyio


async def test_queries_return_what_a_scan_returns(store: AuditStore) -> None:
    rng = random.Random(20261129)
    ids = Ids(rng)
    records = await append_random(store, rng, ids, 400, (0, GENESIS_HASH))
    await check_queries(store, records, rng, rounds=60)
    stored = [r async for r in store.iterate()]
    assert stored == [msgspec.structs.replace(r, resources=()) for r in records]
    # Prune inside a batch: its range stays, and only the records left are found.
    batches = await store.execute_for_tests(
        "SELECT first_seq, last_seq FROM audit_batches WHERE last_seq - first_seq >= 4"
        " AND first_seq > 100 ORDER BY first_seq LIMIT 1"
    )
    first, last = batches[0]
    cut = first + 1
    anchor = Checkpoint(seq=cut, hash=records[cut - 1].hash, signature=b"a" * 32, created=START)
    assert await store.prune(anchor, tracking_start=START) == cut
    kept = await store.execute_for_tests(
        "SELECT last_seq FROM audit_batches WHERE first_seq = ?", (first,)
    )
    assert kept == [(last,)]
    records = records[cut:]
    await check_queries(store, records, rng, rounds=40)
    records += await append_random(store, rng, ids, 100, (records[-1].seq, records[-1].hash))
    await check_queries(store, records, rng, rounds=40)


async def index_of(store: AuditStore) -> set[tuple[str, int, int]]:
    rows = await store.execute_for_tests("SELECT name, first_seq, last_seq FROM audit_index")
    assert len(rows) == len(set(rows))
    return set(rows)


async def test_a_batch_files_each_name_once(store: AuditStore) -> None:
    alias = event(2, key_arn=ALIAS_ARN)
    records = chained([event(0), event(1, key_arn=OTHER_KEY_ARN), alias, event(3), event(4)])
    records[3] = msgspec.structs.replace(records[3], event_id="mine")  # not a sequence id
    one, two = records[:4], records[4:]
    await store.append(one)
    await store.append(two)
    index = await index_of(store)
    assert index == expected_index([one, two])
    assert {name for name, first, _ in index if first == 1} >= {
        KEY_ID,  # a key ARN is filed under its key id: one entry for both
        OTHER_KEY_ID,
        ALIAS_ARN,
        "alias/test",
        "event:mine",
    }
    assert not {name for name, _, _ in index} & {KEY_ARN, OTHER_KEY_ARN}
    # Ids of one sequence share a key: a batch of them needs one or two.
    assert len({name for name, _, _ in index if name.startswith("event:")} - {"event:mine"}) <= 2
    batches = await store.execute_for_tests("SELECT * FROM audit_batches ORDER BY first_seq")
    assert batches == [(1, 4, START, START + 3), (5, 5, START + 4, START + 4)]


async def test_lookups_by_event_id(store: AuditStore) -> None:
    records = chained([event(n) for n in range(6)])
    await store.append(records[:3])
    await store.append(records[3:])
    for record in records:
        found = await store.query(AuditFilter(event_id=record.event_id), limit=5)
        assert [r.seq for r in found] == [record.seq]
    # Same index key as stored ids, but not stored: nothing.
    near = records[2].event_id[:-1] + "z"
    assert near[:34] == records[2].event_id[:34]
    assert await store.query(AuditFilter(event_id=near)) == []
    both = AuditFilter(event_id=records[4].event_id, resource=KEY_ID)
    assert [r.seq for r in await store.query(both)] == [5]
    assert await store.query(msgspec.structs.replace(both, resource=OTHER_KEY_ID)) == []


async def test_time_filters_use_each_batch_span(store: AuditStore) -> None:
    # Times out of seq order: the second batch holds both the earliest and latest event.
    at = [10, 11, 12, 0, 30, 13, 14, 15]
    records = chained([event(n, at=START + t) for n, t in enumerate(at)])
    for part in (records[:3], records[3:5], records[5:]):
        await store.append(part)

    async def seqs(start: float | None, end: float | None, **more: object) -> list[int]:
        where = AuditFilter(start=start, end=end, **more)  # type: ignore[arg-type]
        return [r.seq for r in await store.query(where, limit=100)]

    assert await seqs(START, START + 5) == [4]
    assert await seqs(START + 20, None) == [5]
    assert await seqs(None, START + 10) == [4, 1]
    assert await seqs(START + 12, START + 14) == [7, 6, 3]
    assert await seqs(START + 12, START + 14, resource=KEY_ID) == [7, 6, 3]
    assert await seqs(START + 16, START + 29, resource=KEY_ID) == []
    page = await store.query(AuditFilter(start=START + 11), limit=2, after_seq=7)
    assert [r.seq for r in page] == [6, 5]
    page = await store.query(AuditFilter(end=START + 13), limit=2, after_seq=2, descending=False)
    assert [r.seq for r in page] == [3, 4]
    assert await store.cut_seq(START + 12) == 2
    assert await store.cut_seq(START + 16) == 4  # record 5 (at +30) is the first that late
    assert await store.cut_seq(START + 31) == 8


async def test_prune_trims_batches_and_index(store: AuditStore) -> None:
    records = chained([event(n, key_arn=(KEY_ARN, OTHER_KEY_ARN)[n // 3 % 2]) for n in range(9)])
    batches = [records[:3], records[3:6], records[6:]]
    for batch in batches:
        await store.append(batch)
    anchor = Checkpoint(seq=4, hash=records[3].hash, signature=b"a" * 32, created=START)
    assert await store.prune(anchor, tracking_start=START + 4) == 4
    # The first batch is gone; the second straddles the anchor and keeps its entries.
    assert await index_of(store) == expected_index(batches[1:])
    spans = await store.execute_for_tests("SELECT first_seq, last_seq FROM audit_batches")
    assert sorted(spans) == [(4, 6), (7, 9)]
    found = await store.query(AuditFilter(resource=OTHER_KEY_ID), limit=10, descending=False)
    assert [r.seq for r in found] == [5, 6]
    found = await store.query(AuditFilter(resource=KEY_ARN), limit=10)
    assert [r.seq for r in found] == [9, 8, 7]


async def test_a_key_arn_is_found_through_its_key_id_entry(store: AuditStore) -> None:
    """Lookups by ARN use the key id's entry and then check the ARN itself: a record naming
    only the ARN (no writer writes one, but a v2 database might hold one) is found by ARN,
    not by key id; one naming another Region's key with the same id is not found by ARN."""
    other_region = KEY_ARN.replace("us-west-2", "eu-west-1")
    records = chained([event(0), event(1), event(2)])
    records[1] = msgspec.structs.replace(records[1], resources=(KEY_ARN,))
    records[2] = msgspec.structs.replace(records[2], resources=(other_region, KEY_ID))
    await store.append(records)
    assert {name for name, _, _ in await index_of(store)} >= {KEY_ID}
    by_arn = await store.query(AuditFilter(resource=KEY_ARN), limit=10)
    assert [r.seq for r in by_arn] == [2, 1]
    by_id = await store.query(AuditFilter(resource=KEY_ID), limit=10)
    assert [r.seq for r in by_id] == [3, 1]
    by_other = await store.query(AuditFilter(resource=other_region), limit=10)
    assert [r.seq for r in by_other] == [3]


@pytest.mark.parametrize(
    ("table", "row"),
    [
        ("audit_batches", (4, 4, START, START)),
        ("audit_index", (KEY_ID, 4, 4)),
    ],
)
async def test_a_taken_batch_key_is_a_chain_conflict(
    store: AuditStore, table: str, row: tuple[object, ...]
) -> None:
    records = chained([event(n) for n in range(4)])
    await store.append(records[:3])
    marks = ", ".join("?" * len(row))
    await store.execute_for_tests(f"INSERT INTO {table} VALUES ({marks})", row)
    tables = "SELECT * FROM audit_batches UNION ALL SELECT *, 0 FROM audit_index"
    before = await store.execute_for_tests(tables)
    with pytest.raises(AuditChainConflict):
        await store.append(records[3:])
    assert await store.count() == 3
    assert await store.execute_for_tests(tables) == before  # nothing of the batch is left
    await store.execute_for_tests(f"DELETE FROM {table} WHERE first_seq = 4")
    await store.append(records[3:])
    assert await store.last() == (4, records[3].hash)


async def test_a_batch_row_that_does_not_cover_a_range_hides_nothing(store: AuditStore) -> None:
    records = chained([event(n) for n in range(3)])
    await store.append(records)
    # A batch row no longer matching its index range (seq 1 only, at another time).
    await store.execute_for_tests(
        "UPDATE audit_batches SET last_seq = 1, min_time = 0, max_time = 0 WHERE first_seq = 1"
    )
    found = await store.query(AuditFilter(resource=KEY_ID, start=START + 1), limit=5)
    assert [r.seq for r in found] == [3, 2]


async def test_names_are_read_as_version_2_read_them(store: AuditStore) -> None:
    """``append_rows`` takes any JSON for a record's names, as the version 2 trigger did."""
    names = ['"solo"', '[1, "a", null, "a", "1"]', '{"k": "in-object"}', "[]", None]
    records = chained([event(n) for n in range(len(names))])
    rows = [
        (*msgspec.structs.astuple(r)[:-1], text) for r, text in zip(records, names, strict=True)
    ]
    await store.append_rows(rows)
    for name, seqs in (("solo", [1]), ("1", [2]), ("a", [2]), ("in-object", [3]), ("null", [])):
        found = await store.query(AuditFilter(resource=name), limit=10)
        assert [r.seq for r in found] == seqs, name
