"""Upgrading a version 2 audit database (per-record indexes) to version 3 (per-batch)."""

from __future__ import annotations

import contextlib
import pathlib
import random
import sqlite3
import uuid

import msgspec
import pytest

from kms_actors.audit import verify_chain
from kms_actors.audit._chain import sign_checkpoint
from kms_actors.domain.clock import FakeClock
from kms_actors.hsm import CheckpointSigner
from kms_actors.store import AUDIT_DATABASE_NAME, AuditFilter, AuditRecord, open_audit_store
from kms_actors.store._audit_migrations import _V1, _V2, RECORD_COLUMNS
from kms_actors.store._migrations import split_statements

from .audit_index_support import ALIAS_ARN, NAMES, check_queries, expected_index, pages
from .audit_support import BOB, KEY_ARN, OTHER_KEY_ARN, START, caller, event
from .test_audit_store import chained

pytestmark = pytest.mark.anyio

PRUNED = 10  # a version 2 prune took records 1..10
RECORDS = 150
V2_RESOURCE = (
    "SELECT res.seq FROM audit_resources AS res JOIN audit_records AS r ON r.seq = res.seq"
    " WHERE res.name = ? ORDER BY res.seq DESC"
)
V2_EVENT_ID = "SELECT seq FROM audit_records WHERE event_id = ? ORDER BY seq DESC"
V2_TIMES = (
    "SELECT seq FROM audit_records WHERE event_time >= ? AND event_time <= ? ORDER BY seq DESC"
)
V2_CUT = "SELECT min(seq) FROM audit_records WHERE event_time >= ?"


def history(rng: random.Random) -> list[AuditRecord]:
    """Events of several keys, callers and outcomes; times out of order now and then."""
    events = []
    for number in range(RECORDS):
        key = rng.choice((None, OTHER_KEY_ARN, ALIAS_ARN, KEY_ARN, KEY_ARN, KEY_ARN))
        who = caller(BOB, access_key_id="AKIABOB") if number % 3 else caller()
        at = START + number + rng.choice((0, 0, 0, -4, 3, -60))
        item = event(number, key_arn=key, who=who, at=at)
        if number % 7 == 0:  # ids from elsewhere (random uuid4)
            item = msgspec.structs.replace(item, event_id=str(uuid.UUID(int=rng.getrandbits(128))))
        events.append(item)
    return chained(events)


def write_version_2(
    path: pathlib.Path, records: list[AuditRecord], signer: CheckpointSigner
) -> None:
    """Write the records as version 2 did (its trigger filing the names), then prune."""
    columns = ", ".join(RECORD_COLUMNS)
    marks = ", ".join("?" * (len(RECORD_COLUMNS) + 1))
    insert = f"INSERT INTO audit_records ({columns}, resources) VALUES ({marks})"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for statement in [*split_statements(_V1), *split_statements(_V2)]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")
        for record in records:
            names = msgspec.json.encode(record.resources).decode() if record.resources else None
            conn.execute(insert, (*msgspec.structs.astuple(record)[:-1], names))
        for seq in (100, RECORDS):
            checkpoint = sign_checkpoint(signer, seq, records[seq - 1].hash, START)
            conn.execute(
                "INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?)",
                msgspec.structs.astuple(checkpoint),
            )
        anchor = sign_checkpoint(signer, PRUNED, records[PRUNED - 1].hash, START)
        conn.execute("DELETE FROM audit_resources WHERE seq <= ?", (PRUNED,))
        conn.execute("DELETE FROM audit_records WHERE seq <= ?", (PRUNED,))
        conn.execute(
            "INSERT INTO audit_anchor VALUES (1, ?, ?, ?, ?)", msgspec.structs.astuple(anchor)
        )
        conn.execute("INSERT INTO audit_meta VALUES ('created', ?)", (START,))


def answers(path: pathlib.Path, records: list[AuditRecord]) -> dict[str, object]:
    """Version 2's answers (read with its own indexes) to lookups by name, id and time."""
    found: dict[str, object] = {}
    with contextlib.closing(sqlite3.connect(path)) as conn:

        def seqs(sql: str, *params: object) -> list[int]:
            return [seq for (seq,) in conn.execute(sql, params)]

        for name in NAMES:
            found[f"resource {name}"] = seqs(V2_RESOURCE, name)
        for record in records[PRUNED - 3 :: 9]:
            found[f"event_id {record.event_id}"] = seqs(V2_EVENT_ID, record.event_id)
            near = record.event_id[:-1] + "x"
            found[f"event_id {near}"] = seqs(V2_EVENT_ID, near)
        for low in range(-70, RECORDS + 70, 13):
            found[f"times {low}"] = seqs(V2_TIMES, START + low, START + low + 20)
            found[f"cut {low}"] = seqs(V2_CUT, START + low)
    return found


async def test_version_2_databases_are_upgraded(
    data_dir: pathlib.Path, clock: FakeClock, signer: CheckpointSigner
) -> None:
    rng = random.Random(2)
    records = history(rng)
    data_dir.mkdir(mode=0o700)
    path = data_dir / AUDIT_DATABASE_NAME
    write_version_2(path, records, signer)
    before = answers(path, records)
    assert before[f"resource {OTHER_KEY_ARN}"]
    assert any(before[f"times {low}"] for low in range(-70, RECORDS + 70, 13))
    async with open_audit_store(data_dir, clock=clock) as store:
        assert store.schema_version == 3
        report = await verify_chain(store, signer)
        assert report.ok, report.summary()
        assert (report.first_seq, report.records, report.checkpoints) == (11, 140, 2)
        after: dict[str, object] = {}
        for key in before:
            kind, value = key.split(" ", 1)
            if kind == "cut":
                cut = await store.cut_seq(START + int(value))
                after[key] = [cut + 1] if cut < RECORDS else [None]
                continue
            if kind == "times":
                where = AuditFilter(start=START + int(value), end=START + int(value) + 20)
            else:
                where = AuditFilter(**{kind: value})  # type: ignore[arg-type]
            after[key], _ = await pages(store, where, limit=7, descending=True)
        assert after == before
        # The old records became ranges of 32 seqs (the first one cut short by the prune).
        spans = await store.execute_for_tests("SELECT first_seq, last_seq FROM audit_batches")
        groups = [(11, 32), (33, 64), (65, 96), (97, 128), (129, 150)]
        assert sorted(spans) == groups
        index = await store.execute_for_tests("SELECT name, first_seq, last_seq FROM audit_index")
        kept = records[PRUNED:]
        assert set(index) == expected_index(
            [[r for r in kept if a <= r.seq <= b] for a, b in groups]
        )
        schema = await store.execute_for_tests("SELECT type, name FROM sqlite_schema")
        names = {name for _, name in schema}
        assert not names & {"audit_resources", "audit_records_resources", "audit_by_event_id"}
        assert "audit_by_time" not in names
        # And the store goes on: appends, queries, a prune across the old ranges.
        more = chained(
            [event(n) for n in range(RECORDS, RECORDS + 40)], head=(RECORDS, records[-1].hash)
        )
        await store.append(more[:25])
        await store.append(more[25:])
        await check_queries(store, kept + more, rng, rounds=30)
        anchor = sign_checkpoint(signer, 70, records[69].hash, START + 100)
        assert await store.prune(anchor, tracking_start=START + 70) == 60
        await check_queries(store, [r for r in kept + more if r.seq > 70], rng, rounds=30)
        report = await verify_chain(store, signer)
        assert report.ok, report.summary()
