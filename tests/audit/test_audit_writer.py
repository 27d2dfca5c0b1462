"""The audit writer: durable group commit, relaxed mode, checkpoints, failing closed."""

from __future__ import annotations

import base64
import logging
import pathlib
from collections.abc import Awaitable, Callable

import anyio
import msgspec
import pytest

from kms_actors.audit import (
    AuditWriter,
    api_call_event,
    capture_call,
    encode_event,
    open_audit_store,
    open_audit_writer,
    verify_chain,
)
from kms_actors.domain.clock import FakeClock
from kms_actors.errors import KMSInternalException
from kms_actors.hsm import CheckpointSigner

from .audit_support import KEY_ARN, START, caller, event

pytestmark = pytest.mark.anyio

FAIL_WRITES = (
    "CREATE TRIGGER fail_writes BEFORE INSERT ON audit_records"
    " BEGIN SELECT RAISE(ABORT, 'disk is gone'); END"
)


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait (really: the writer runs on SQLite's thread) until ``condition()`` holds."""
    with anyio.fail_after(10):
        while not await condition():
            await anyio.sleep(0.005)


async def stored_count(data_dir: pathlib.Path) -> int:
    """Count the records through a second, independent connection."""
    async with open_audit_store(data_dir) as other:
        return await other.count()


async def test_durable_record_is_committed_when_it_returns(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock) as log:
        await log.record(event(0))
        assert await stored_count(data_dir) == 1
        await log.record(event(1))
        assert await stored_count(data_dir) == 2


async def test_group_commit_batches_concurrent_records(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock) as log:
        async with anyio.create_task_group() as tg:
            for number in range(200):
                tg.start_soon(log.record, event(number))
        assert log.committed == 200
        assert log.batches < 200
        assert await stored_count(data_dir) == 200
        assert (await verify_chain(log.store, signer)).ok


async def test_batches_are_bounded(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock, durable=False, max_batch=7) as log:
        for number in range(20):
            await log.record(event(number))
        await log.flush()
        assert log.committed == 20
        assert log.batches == 3


async def test_relaxed_mode_returns_at_once_and_flushes_on_exit(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock, durable=False) as log:
        for number in range(100):
            await log.record(event(number))
        log.record_nowait(event(100))
        assert log.committed == 0  # nothing waited for the writer
    assert await stored_count(data_dir) == 101


async def test_flush_waits_for_queued_events(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock, durable=False) as log:
        for number in range(10):
            log.record_nowait(event(number))
        await log.flush()
        assert await stored_count(data_dir) == 10


async def test_cancelled_caller_loses_only_its_reply(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock) as log:
        with anyio.move_on_after(0):
            await log.record(event(0))
        await log.flush()
        assert await stored_count(data_dir) == 1


async def test_cancelling_the_owner_still_flushes(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    with anyio.CancelScope() as scope:
        async with open_audit_writer(data_dir, signer, clock=clock, durable=False) as log:
            for number in range(50):
                log.record_nowait(event(number))
            scope.cancel()
            await anyio.sleep(10)
    assert await stored_count(data_dir) == 50


async def test_reopening_continues_the_chain(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    for start in (0, 3):
        async with open_audit_writer(data_dir, signer, clock=clock) as log:
            for number in range(start, start + 3):
                await log.record(event(number))
    async with open_audit_store(data_dir) as store:
        report = await verify_chain(store, signer)
    assert report.ok, report.summary()
    assert (report.first_seq, report.last_seq) == (1, 6)


async def test_checkpoint_every_n_records_and_on_close(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock, checkpoint_every=10) as log:
        for number in range(25):
            await log.record(event(number))
        assert [c.seq for c in await log.store.checkpoints()] == [10, 20]
    async with open_audit_store(data_dir) as store:
        assert [c.seq for c in await store.checkpoints()] == [10, 20, 25]


async def test_checkpoint_after_an_interval(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock, checkpoint_interval=60) as log:
        for number in range(3):
            await log.record(event(number))
        clock.advance(59)
        await anyio.sleep(0.05)
        assert await log.store.checkpoints() == []
        clock.advance(1)

        async def checkpointed() -> bool:
            return [c.seq for c in await log.store.checkpoints()] == [3]

        await until(checkpointed)
        # Nothing new: no further checkpoint however long we wait.
        clock.advance(3600)
        await anyio.sleep(0.05)
        assert log.checkpoints == 1


async def make_unwritable(log: AuditWriter) -> None:
    await log.store.execute_for_tests(FAIL_WRITES)


async def test_fails_closed_and_recovers(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock, retry_interval=5) as log:
        await log.record(event(0))
        await make_unwritable(log)
        with pytest.raises(KMSInternalException):
            await log.record(event(1))
        assert not log.healthy
        # While broken, every request fails at once, in every mode.
        with pytest.raises(KMSInternalException):
            log.ensure_healthy()
        with pytest.raises(KMSInternalException):
            await log.record(event(2))
        with pytest.raises(KMSInternalException):
            log.record_nowait(event(3))
        log.durable = False
        with pytest.raises(KMSInternalException):
            await log.record(event(4))
        log.durable = True
        # Repaired: the next retry writes the kept events, in order, and requests work again.
        await log.store.execute_for_tests("DROP TRIGGER fail_writes")
        clock.advance(5)

        async def recovered() -> bool:
            return log.healthy

        await until(recovered)
        await log.record(event(5))
        assert await log.store.count() == 6
        report = await verify_chain(log.store, signer)
        assert report.ok, report.summary()
        names = [r.event_id for r in await log.store.query(limit=10, descending=False)]
        assert len(set(names)) == 6


async def test_events_unwritable_at_close_are_reported(
    data_dir: pathlib.Path,
    signer: CheckpointSigner,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, "kms_actors.audit")
    async with open_audit_writer(data_dir, signer, clock=clock, durable=False) as log:
        await make_unwritable(log)
        log.record_nowait(event(0))
        log.record_nowait(event(1))
    assert log.lost == 2
    assert "could not write" in caplog.text
    with pytest.raises(KMSInternalException):
        await log.record(event(2))


async def test_backlog_bound_while_broken(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock, max_backlog=3) as log:
        await make_unwritable(log)
        for number in range(5):
            with pytest.raises(KMSInternalException):
                await log.record(event(number))
        assert log.lost == 2
        await log.store.execute_for_tests("DROP TRIGGER fail_writes")
    assert await stored_count(data_dir) == 3


async def test_record_after_close_fails(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock) as log:
        pass
    with pytest.raises(KMSInternalException):
        await log.record(event(0))
    with pytest.raises(KMSInternalException):
        log.record_nowait(event(0))


async def test_disk_full_fails_closed(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock, retry_interval=1) as log:
        await log.record(event(0))
        pages = (await log.store.execute_for_tests("PRAGMA page_count"))[0][0]
        await log.store.execute_for_tests(f"PRAGMA max_page_count = {pages}")
        refused = 0

        async def request(number: int) -> None:
            nonlocal refused
            try:
                await log.record(event(number))
            except KMSInternalException:
                refused += 1

        async with anyio.create_task_group() as tg:
            for number in range(1, 200):
                tg.start_soon(request, number)
        assert refused == 199
        assert not log.healthy
        await log.store.execute_for_tests("PRAGMA max_page_count = 1073741823")
        clock.advance(1)

        async def recovered() -> bool:
            return log.healthy

        await until(recovered)
        assert await log.store.count() == 200  # the refused requests' events were kept
        assert (await verify_chain(log.store, signer)).ok


async def test_every_waiting_caller_is_answered_when_a_write_fails(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    # max_batch=1: while the first batch fails, the others wait behind it in the queue.
    async with open_audit_writer(data_dir, signer, clock=clock, max_batch=1) as log:
        await make_unwritable(log)
        refused = 0

        async def request(number: int) -> None:
            nonlocal refused
            try:
                await log.record(event(number))
            except KMSInternalException:
                refused += 1

        with anyio.fail_after(5):  # no caller waits for a retry (the clock never moves)
            async with anyio.create_task_group() as tg:
                for number in range(10):
                    tg.start_soon(request, number)
        assert refused == 10
        await log.store.execute_for_tests("DROP TRIGGER fail_writes")
    assert await stored_count(data_dir) == 10


async def test_no_secret_reaches_the_audit_files(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    plaintext, data_key, blob = b"PLAINTEXT-7c1e9a", b"DATAKEY-52b0f3d4", b"CIPHERTEXT-93aa01"
    async with open_audit_writer(data_dir, signer, clock=clock) as log:
        for operation in ("Encrypt", "Decrypt", "GenerateDataKey", "ReEncrypt", "CreateGrant"):
            await log.record(
                api_call_event(
                    operation=operation,
                    caller=caller(),
                    params={
                        "KeyId": KEY_ARN,
                        "Plaintext": plaintext,
                        "CiphertextBlob": blob,
                        "GrantTokens": [data_key.decode()],
                    },
                    event_time=START,
                    request_id="r",
                    resources=[KEY_ARN],
                    response={"Plaintext": data_key, "CiphertextBlob": blob, "GrantToken": "t"},
                )
            )
        scanned = [path.read_bytes() for path in log.store.data_files()]
    scanned += [path.read_bytes() for path in log.store.data_files()]  # after the checkpoint
    assert scanned
    for content in scanned:
        for secret in (plaintext, data_key, blob):
            assert secret not in content
            assert base64.b64encode(secret) not in content


async def test_records_a_captured_request_as_its_event(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    params = {"KeyId": KEY_ARN, "Plaintext": b"PLAINTEXT", "EncryptionContext": {"a": "b"}}
    async with open_audit_writer(data_dir, signer, clock=clock) as log:
        await log.record(
            capture_call(
                "Encrypt", caller(), params, event_time=START, request_id="r", resources=[KEY_ARN]
            )
        )
        (stored,) = await log.store.query(limit=1)
    expected = api_call_event(
        operation="Encrypt",
        caller=caller(),
        params=params,
        event_time=START,
        request_id="r",
        resources=[KEY_ARN],
    )
    same = msgspec.structs.replace(expected, event_id=stored.event_id)
    assert stored.event_json == encode_event(same)


async def test_a_burst_from_idle_is_split_and_everyone_answered(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock) as log:
        async with anyio.create_task_group() as tg:
            for number in range(64):
                tg.start_soon(log.record, event(number))
        assert log.committed == 64
        assert log.batches >= 2  # the first batch took half, its callers went on meanwhile
        assert (await verify_chain(log.store, signer)).ok


async def test_a_wave_no_larger_than_the_last_batch_is_not_split(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    """Bursts are cut in two, but the waves of callers that follow are written whole: cutting
    them again each time would shrink the batches until the writer could not keep up."""

    async def burst(size: int, first: int) -> int:
        """Queue ``size`` events at once, wait until they are written; return the batches."""
        before = log.batches
        for number in range(first, first + size):
            log.record_nowait(event(number))
        await log.flush()
        return log.batches - before

    async with open_audit_writer(data_dir, signer, clock=clock) as log:
        assert await burst(64, 0) == 2  # 32 and 32
        assert await burst(32, 64) == 1  # a wave like the last batch
        assert await burst(20, 96) == 1
        assert await burst(48, 116) == 2  # more than twice the last batch: a burst again
        assert log.committed == 164
        assert (await verify_chain(log.store, signer)).ok


async def test_an_event_that_cannot_be_built_fails_alone(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock
) -> None:
    broken = msgspec.structs.replace(event(0), request_parameters={"x": object()})
    async with open_audit_writer(data_dir, signer, clock=clock) as log:
        with pytest.raises(TypeError):
            await log.record(broken)
        assert log.healthy
        await log.record(event(1))
        assert await log.store.count() == 1
