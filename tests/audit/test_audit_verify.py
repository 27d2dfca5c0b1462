"""Tamper evidence: verify_chain catches edits, deletions, reordering and forged signatures;
export_and_prune cuts the chain without breaking it."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from kms_actors.audit import (
    AuditStore,
    ChainBroken,
    export_and_prune,
    open_audit_store,
    open_audit_writer,
    verify_chain,
)
from kms_actors.audit._chain import chain_hash, checkpoint_valid
from kms_actors.domain.clock import FakeClock
from kms_actors.hsm import CheckpointSigner
from kms_actors.store import GENESIS_HASH

from .audit_support import START, event, random_signer

pytestmark = pytest.mark.anyio

RECORDS = 12


@pytest.fixture
async def chain(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> AsyncIterator[AuditStore]:
    """Twelve events, one second apart from START, checkpoints at 5, 10 and 12 (on close)."""
    async with open_audit_writer(data_dir, signer, clock=clock, checkpoint_every=5) as log:
        for number in range(RECORDS):
            await log.record(event(number))
    async with open_audit_store(data_dir, clock=clock) as store:
        yield store


async def problem_at(store: AuditStore, signer: CheckpointSigner) -> tuple[int, str]:
    report = await verify_chain(store, signer)
    assert not report.ok
    assert report.problem is not None
    assert report.summary().startswith(f"BROKEN at record {report.problem.seq}")
    return report.problem.seq, report.problem.kind


async def event_json(store: AuditStore, seq: int) -> bytes:
    record = await store.get(seq)
    assert record is not None
    return record.event_json


async def test_intact_chain_verifies(chain: AuditStore, signer: CheckpointSigner) -> None:
    report = await verify_chain(chain, signer)
    assert report.ok, report.summary()
    assert (report.first_seq, report.last_seq, report.records) == (1, RECORDS, RECORDS)
    assert report.checkpoints == 3
    assert report.last_checkpoint_seq == RECORDS
    assert report.summary() == "OK: records 1..12 (12), 3 checkpoints, last checkpoint at 12"


async def test_another_root_key_does_not_verify(chain: AuditStore) -> None:
    assert await problem_at(chain, random_signer()) == (5, "checkpoint")


async def test_edited_event_is_caught(chain: AuditStore, signer: CheckpointSigner) -> None:
    edited = (await event_json(chain, 7)).replace(b'"Encrypt"', b'"Decrypt"')
    await chain.execute_for_tests(
        "UPDATE audit_records SET event_json = ? WHERE seq = 7", (edited,)
    )
    assert await problem_at(chain, signer) == (7, "edited")


async def test_deleted_record_is_caught(chain: AuditStore, signer: CheckpointSigner) -> None:
    await chain.execute_for_tests("DELETE FROM audit_records WHERE seq = 7")
    assert await problem_at(chain, signer) == (7, "missing")


async def test_deleted_first_record_is_caught(chain: AuditStore, signer: CheckpointSigner) -> None:
    await chain.execute_for_tests("DELETE FROM audit_records WHERE seq = 1")
    assert await problem_at(chain, signer) == (1, "missing")


async def test_deleted_and_renumbered_is_caught(
    chain: AuditStore, signer: CheckpointSigner
) -> None:
    await chain.execute_for_tests("DELETE FROM audit_records WHERE seq = 7")
    await chain.execute_for_tests("UPDATE audit_records SET seq = -seq WHERE seq > 7")
    await chain.execute_for_tests("UPDATE audit_records SET seq = -seq - 1 WHERE seq < 0")
    assert await problem_at(chain, signer) == (7, "reordered")


async def test_swapped_records_are_caught(chain: AuditStore, signer: CheckpointSigner) -> None:
    await chain.execute_for_tests("UPDATE audit_records SET seq = -1 WHERE seq = 6")
    await chain.execute_for_tests("UPDATE audit_records SET seq = 6 WHERE seq = 7")
    await chain.execute_for_tests("UPDATE audit_records SET seq = 7 WHERE seq = -1")
    assert await problem_at(chain, signer) == (6, "reordered")


async def test_forged_checkpoint_signature_is_caught(
    chain: AuditStore, signer: CheckpointSigner
) -> None:
    await chain.execute_for_tests(
        "UPDATE audit_checkpoints SET signature = zeroblob(32) WHERE seq = 10"
    )
    assert await problem_at(chain, signer) == (10, "checkpoint")


async def test_rewritten_and_rehashed_chain_is_caught_at_the_next_checkpoint(
    chain: AuditStore, signer: CheckpointSigner
) -> None:
    previous = await chain.get(6)
    assert previous is not None
    prev = previous.hash
    for seq in range(7, RECORDS + 1):
        data = await event_json(chain, seq)
        if seq == 7:
            data = data.replace(b'"Encrypt"', b'"Decrypt"')
        record_hash = chain_hash(prev, data)
        await chain.execute_for_tests(
            "UPDATE audit_records SET event_json = ?, event_name = ?, prev_hash = ?, hash = ?"
            " WHERE seq = ?",
            (data, "Decrypt" if seq == 7 else "Encrypt", prev, record_hash, seq),
        )
        prev = record_hash
    assert await problem_at(chain, signer) == (10, "checkpoint")


async def test_cut_tail_is_caught_by_its_checkpoint(
    chain: AuditStore, signer: CheckpointSigner
) -> None:
    await chain.execute_for_tests("DELETE FROM audit_records WHERE seq > 10")
    assert await problem_at(chain, signer) == (11, "missing")


async def test_doctored_query_column_is_caught(chain: AuditStore, signer: CheckpointSigner) -> None:
    await chain.execute_for_tests(
        "UPDATE audit_records SET account_id = '999999999999' WHERE seq = 3"
    )
    assert await problem_at(chain, signer) == (3, "columns")


async def test_export_and_prune_keeps_the_chain_verifiable(
    chain: AuditStore, signer: CheckpointSigner, tmp_path: pathlib.Path, clock: FakeClock
) -> None:
    before = [await event_json(chain, seq) for seq in range(1, RECORDS + 1)]
    first = tmp_path / "audit-1.jsonl"
    count, anchor = await export_and_prune(chain, signer, START + 8, first, clock=clock)
    assert count == 8
    assert anchor is not None and anchor.seq == 8
    assert checkpoint_valid(signer, anchor)
    lines = first.read_bytes().splitlines()
    assert lines == before[:8]
    prev = GENESIS_HASH
    for line in lines:
        prev = chain_hash(prev, line)
    assert prev == anchor.hash  # the export checks out against the anchor
    report = await verify_chain(chain, signer)
    assert report.ok, report.summary()
    assert (report.first_seq, report.anchor_seq) == (9, 8)
    assert await chain.tracking_start() == START + 8

    second = tmp_path / "audit-2.jsonl"
    count, later = await export_and_prune(chain, signer, START + 10, second, clock=clock)
    assert count == 2 and later is not None
    prev = anchor.hash
    for line in second.read_bytes().splitlines():
        prev = chain_hash(prev, line)
    assert prev == later.hash
    assert (await verify_chain(chain, signer)).ok


async def test_nothing_old_enough_writes_nothing(
    chain: AuditStore, signer: CheckpointSigner, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "audit.jsonl"
    assert await export_and_prune(chain, signer, START - 1, path) == (0, None)
    assert not path.exists()


async def test_export_never_overwrites(
    chain: AuditStore, signer: CheckpointSigner, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("keep me")
    with pytest.raises(FileExistsError):
        await export_and_prune(chain, signer, START + 8, path)
    assert path.read_text() == "keep me"
    assert await chain.count() == RECORDS


async def test_broken_chain_is_not_pruned(
    chain: AuditStore, signer: CheckpointSigner, tmp_path: pathlib.Path
) -> None:
    await chain.execute_for_tests("DELETE FROM audit_records WHERE seq = 3")
    with pytest.raises(ChainBroken) as caught:
        await export_and_prune(chain, signer, START + 8, tmp_path / "audit.jsonl")
    assert caught.value.report.problem is not None
    assert caught.value.report.problem.seq == 3
    assert await chain.count() == RECORDS - 1


async def test_forged_anchor_is_caught(
    chain: AuditStore, signer: CheckpointSigner, tmp_path: pathlib.Path
) -> None:
    await export_and_prune(chain, signer, START + 4, tmp_path / "audit.jsonl")
    await chain.execute_for_tests("UPDATE audit_anchor SET signature = zeroblob(32)")
    assert await problem_at(chain, signer) == (4, "anchor")


async def test_log_continues_after_everything_is_pruned(
    chain: AuditStore,
    signer: CheckpointSigner,
    data_dir: pathlib.Path,
    tmp_path: pathlib.Path,
    clock: FakeClock,
) -> None:
    count, _ = await export_and_prune(chain, signer, START + 100, tmp_path / "all.jsonl")
    assert count == RECORDS
    async with open_audit_writer(data_dir, signer, clock=clock) as log:
        await log.record(event(100))
    report = await verify_chain(chain, signer)
    assert report.ok, report.summary()
    assert (report.first_seq, report.last_seq) == (RECORDS + 1, RECORDS + 1)


async def test_rehashed_garbage_is_caught_not_crashed_on(
    chain: AuditStore, signer: CheckpointSigner
) -> None:
    previous = await chain.get(11)
    assert previous is not None
    garbage = b"not an event"
    await chain.execute_for_tests(
        "UPDATE audit_records SET event_json = ?, hash = ? WHERE seq = 12",
        (garbage, chain_hash(previous.hash, garbage)),
    )
    assert await problem_at(chain, signer) == (12, "columns")
