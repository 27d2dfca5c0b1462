"""The audit repository: its own SQLite file, chain continuity, queries, prune anchor."""

from __future__ import annotations

import contextlib
import json
import pathlib
import sqlite3
import stat
from collections.abc import Sequence

import msgspec
import pytest

from kms_actors.audit import AuditEvent, encode_event
from kms_actors.audit._chain import chain_hash, unchained_record
from kms_actors.domain.clock import FakeClock
from kms_actors.store import (
    AUDIT_DATABASE_NAME,
    GENESIS_HASH,
    AuditChainConflict,
    AuditFilter,
    AuditRecord,
    AuditStore,
    Checkpoint,
    StoreVersionError,
    open_audit_store,
)
from kms_actors.store._audit_migrations import _V1, RECORD_COLUMNS, latest_version
from kms_actors.store._migrations import split_statements

from .audit_support import BOB, KEY_ARN, KEY_ID, OTHER_KEY_ARN, START, caller, event

pytestmark = pytest.mark.anyio


def chained(
    events: Sequence[AuditEvent], head: tuple[int, bytes] = (0, GENESIS_HASH)
) -> list[AuditRecord]:
    seq, prev = head
    records = []
    for item in events:
        seq += 1
        json = encode_event(item)
        record_hash = chain_hash(prev, json)
        records.append(
            msgspec.structs.replace(
                unchained_record(item, json), seq=seq, prev_hash=prev, hash=record_hash
            )
        )
        prev = record_hash
    return records


async def test_own_file_private_and_wal(store: AuditStore, data_dir: pathlib.Path) -> None:
    assert store.path == data_dir / AUDIT_DATABASE_NAME
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert store.schema_version == latest_version() == 3
    rows = await store.execute_for_tests("PRAGMA journal_mode")
    assert rows[0][0] == "wal"


async def test_records_survive_reopening(data_dir: pathlib.Path, clock: FakeClock) -> None:
    records = chained([event(0), event(1)])
    async with open_audit_store(data_dir, clock=clock) as store:
        await store.append(records)
    async with open_audit_store(data_dir, clock=clock) as store:
        assert await store.query(limit=10, descending=False) == [
            msgspec.structs.replace(r, resources=()) for r in records
        ]
        assert await store.last() == (2, records[-1].hash)


async def test_newer_schema_is_refused(data_dir: pathlib.Path, clock: FakeClock) -> None:
    async with open_audit_store(data_dir, clock=clock) as store:
        await store.execute_for_tests("PRAGMA user_version = 99")
    with pytest.raises(StoreVersionError):
        async with open_audit_store(data_dir, clock=clock):
            pass


async def test_append_must_continue_the_chain(store: AuditStore) -> None:
    first, second = chained([event(0), event(1)])
    with pytest.raises(AuditChainConflict):
        await store.append([second])  # seq 2 before seq 1
    with pytest.raises(AuditChainConflict):
        await store.append([msgspec.structs.replace(first, prev_hash=b"\x01" * 32)])
    with pytest.raises(AuditChainConflict):
        await store.append([second, first])
    assert await store.count() == 0
    await store.append([first])
    with pytest.raises(AuditChainConflict):
        await store.append([first])  # a second writer with a stale head
    await store.append([second])
    assert await store.last() == (2, second.hash)


async def test_append_with_checkpoint_is_one_transaction(store: AuditStore) -> None:
    records = chained([event(0), event(1)])
    checkpoint = Checkpoint(seq=2, hash=records[1].hash, signature=b"s" * 32, created=START)
    await store.append(records, checkpoint)
    assert await store.checkpoints() == [checkpoint]
    assert await store.last_checkpoint() == checkpoint
    with pytest.raises(AuditChainConflict):
        await store.add_checkpoint(msgspec.structs.replace(checkpoint, hash=b"x" * 32))


async def test_query_filters(store: AuditStore) -> None:
    bob = caller(BOB, access_key_id="AKIABOB")
    await store.append(
        chained(
            [
                event(0),
                event(1, who=bob, operation="DescribeKey"),
                event(2, key_arn=OTHER_KEY_ARN),
                event(3, operation="DisableKey"),
            ]
        )
    )

    async def seqs(**where: object) -> list[int]:
        found = await store.query(AuditFilter(**where), limit=10)  # type: ignore[arg-type]
        return [record.seq for record in found]

    assert await seqs() == [4, 3, 2, 1]
    assert await seqs(resource=KEY_ARN) == [4, 2, 1]
    assert await seqs(resource=KEY_ID) == [4, 2, 1]
    assert await seqs(principal_arn=BOB) == [2]
    assert await seqs(username="Bob") == [2]
    assert await seqs(access_key_id="AKIABOB") == [2]
    assert await seqs(event_name="DisableKey") == [4]
    assert await seqs(event_names=("DisableKey", "DescribeKey")) == [4, 2]
    assert await seqs(read_only=False) == [4]
    assert await seqs(start=START + 1, end=START + 2) == [3, 2]
    assert await seqs(resource=KEY_ARN, read_only=True, start=START + 1) == [2]
    assert await seqs(account_id="444455556666") == []


async def test_query_pages_both_ways(store: AuditStore) -> None:
    await store.append(chained([event(n) for n in range(5)]))
    page = await store.query(limit=2)
    assert [r.seq for r in page] == [5, 4]
    page = await store.query(limit=2, after_seq=4)
    assert [r.seq for r in page] == [3, 2]
    page = await store.query(AuditFilter(resource=KEY_ARN), limit=2, after_seq=2)
    assert [r.seq for r in page] == [1]
    page = await store.query(limit=3, after_seq=1, descending=False)
    assert [r.seq for r in page] == [2, 3, 4]


async def test_iterate_in_pages(store: AuditStore) -> None:
    await store.append(chained([event(n) for n in range(7)]))
    assert [r.seq async for r in store.iterate(3, page=2)] == [3, 4, 5, 6, 7]


async def test_prune_keeps_an_anchor(store: AuditStore, clock: FakeClock) -> None:
    records = chained([event(n) for n in range(5)])
    await store.append(records)
    await store.add_checkpoint(
        Checkpoint(seq=2, hash=records[1].hash, signature=b"s" * 32, created=START)
    )
    assert await store.cut_seq(START + 3) == 3
    assert await store.cut_seq(START + 100) == 5
    assert await store.tracking_start() == clock.now()
    anchor = Checkpoint(seq=3, hash=records[2].hash, signature=b"a" * 32, created=START + 10)
    with pytest.raises(AuditChainConflict):
        await store.prune(msgspec.structs.replace(anchor, hash=b"x" * 32), tracking_start=0)
    assert await store.prune(anchor, tracking_start=START + 3) == 3
    assert await store.anchor() == anchor
    assert await store.checkpoints() == []
    assert [r.seq async for r in store.iterate()] == [4, 5]
    assert await store.query(AuditFilter(resource=KEY_ID), limit=10, descending=False) == [
        msgspec.structs.replace(r, resources=()) for r in records[3:]
    ]
    assert await store.tracking_start() == START + 3
    # Pruning everything: the anchor is the head the chain continues from.
    last = Checkpoint(seq=5, hash=records[4].hash, signature=b"a" * 32, created=START + 11)
    assert await store.prune(last, tracking_start=START + 6) == 2
    assert await store.last() == (5, records[4].hash)
    await store.append(chained([event(9)], head=(5, records[4].hash)))
    assert await store.count() == 1


async def test_synchronous_setting(data_dir: pathlib.Path) -> None:
    async with open_audit_store(data_dir, synchronous="NORMAL") as store:
        assert (await store.execute_for_tests("PRAGMA synchronous"))[0][0] == 1
    with pytest.raises(ValueError, match="synchronous"):
        async with open_audit_store(data_dir, synchronous="OFF"):  # type: ignore[arg-type]
            pass


@pytest.mark.parametrize("count", [1, 3, 97, 1024, 1025, 2100])
async def test_append_batches_of_any_size(store: AuditStore, count: int) -> None:
    records = chained(
        [event(n % 50, key_arn=KEY_ARN if n % 2 else OTHER_KEY_ARN) for n in range(count)]
    )
    await store.append(records)
    assert await store.count() == count
    assert await store.last() == (count, records[-1].hash)
    odd = await store.query(AuditFilter(resource=KEY_ID), limit=count)
    assert [r.seq for r in odd] == [r.seq for r in reversed(records) if r.seq % 2 == 0]
    stored = [r async for r in store.iterate()]
    assert stored == [msgspec.structs.replace(r, resources=()) for r in records]


async def test_append_rows_takes_names_as_json(store: AuditStore) -> None:
    (record,) = chained([event(0)])
    row = (*msgspec.structs.astuple(record)[:-1], msgspec.json.encode(["x", "y"]).decode())
    await store.append_rows([row])
    assert [r.seq for r in await store.query(AuditFilter(resource="y"), limit=5)] == [1]
    await store.append_rows([])  # nothing to do
    assert await store.count() == 1


async def test_a_second_writer_is_caught(data_dir: pathlib.Path, clock: FakeClock) -> None:
    first, second, third = chained([event(0), event(1), event(2)])
    async with (
        open_audit_store(data_dir, clock=clock) as one,
        open_audit_store(data_dir, clock=clock) as other,
    ):
        await one.append([first])
        await other.append([second])
        # ``one`` last wrote record 1; its own record 2 collides with the other writer's.
        with pytest.raises(AuditChainConflict):
            await one.append([msgspec.structs.replace(second, event_id="mine")])
        await one.append([third])  # after a conflict it reads the head again
        assert [r.event_id async for r in one.iterate()] == [
            r.event_id for r in (first, second, third)
        ]


async def test_prune_drops_the_index_entries(store: AuditStore) -> None:
    records = chained([event(n) for n in range(4)])
    for record in records:  # one batch each
        await store.append([record])
    anchor = Checkpoint(seq=2, hash=records[1].hash, signature=b"a" * 32, created=START)
    assert await store.prune(anchor, tracking_start=START + 2) == 2
    rows = await store.execute_for_tests("SELECT first_seq, last_seq FROM audit_index")
    assert sorted(set(rows)) == [(3, 3), (4, 4)]
    rows = await store.execute_for_tests("SELECT first_seq, last_seq FROM audit_batches")
    assert sorted(rows) == [(3, 3), (4, 4)]


async def test_version_1_databases_are_upgraded(data_dir: pathlib.Path, clock: FakeClock) -> None:
    records = chained([event(0), event(1, key_arn=OTHER_KEY_ARN), event(2, key_arn=None)])
    data_dir.mkdir(mode=0o700)
    with contextlib.closing(sqlite3.connect(data_dir / AUDIT_DATABASE_NAME)) as conn, conn:
        for statement in split_statements(_V1):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        columns = ", ".join(RECORD_COLUMNS)
        marks = ", ".join("?" * len(RECORD_COLUMNS))
        for record in records:
            values = msgspec.structs.astuple(record)[:-1]
            conn.execute(f"INSERT INTO audit_records ({columns}) VALUES ({marks})", values)
            for name in record.resources:
                conn.execute("INSERT INTO audit_resources VALUES (?, ?)", (name, record.seq))
        conn.execute("INSERT INTO audit_meta VALUES ('created', ?)", (START,))
    async with open_audit_store(data_dir, clock=clock) as store:
        assert store.schema_version == 3
        assert [r.seq for r in await store.query(AuditFilter(resource=KEY_ID), limit=5)] == [1]
        assert [r.seq for r in await store.query(AuditFilter(resource=OTHER_KEY_ARN))] == [2]
        (names,) = (
            await store.execute_for_tests("SELECT resources FROM audit_records WHERE seq = 1")
        )[0]
        assert sorted(json.loads(names)) == sorted(records[0].resources)
        await store.append(chained([event(3)], head=(3, records[-1].hash)))
        anchor = Checkpoint(seq=2, hash=records[1].hash, signature=b"a" * 32, created=START)
        assert await store.prune(anchor, tracking_start=START) == 2
        # Versions 1 and 2 records became one range (1..3); pruning keeps it, as it straddles
        # the anchor, and the lookups find only the records left.
        remaining = await store.execute_for_tests("SELECT first_seq, last_seq FROM audit_batches")
        assert sorted(remaining) == [(1, 3), (4, 4)]
        found = await store.query(AuditFilter(resource=KEY_ID), limit=5)
        assert [r.seq for r in found] == [4]


def test_the_record_shape_matches_the_schema() -> None:
    assert AuditRecord.__struct_fields__[:-1] == RECORD_COLUMNS
