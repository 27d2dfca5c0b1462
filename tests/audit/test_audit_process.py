"""The service's audit log and its writer process: durable answers, supervision, the pipe."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import msgspec
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from kms_actors.audit import (
    CallCapture,
    capture_call,
    open_audit_log,
    open_audit_store,
    verify_chain,
)
from kms_actors.audit._pipe import (
    BROKEN,
    EVENTS,
    HELLO,
    PROGRESS,
    READY,
    REPLAY,
    Broken,
    Hello,
    Progress,
    encoder,
    events_buffer,
    frame,
    seal_events,
)
from kms_actors.errors import KMSInternalException
from kms_actors.hsm import CheckpointSigner

from .audit_support import KEY_ARN, START, caller, random_signer

pytestmark = pytest.mark.anyio

FAIL_WRITES = (
    "CREATE TRIGGER fail_writes BEFORE INSERT ON audit_records"
    " BEGIN SELECT RAISE(ABORT, 'disk is gone'); END"
)


def capture(number: int = 0) -> CallCapture:
    """Return the capture of an Encrypt request (with its plaintext, which is dropped)."""
    return capture_call(
        "Encrypt",
        caller(),
        {"KeyId": KEY_ARN, "Plaintext": b"secret", "EncryptionContext": {"n": str(number)}},
        event_time=START + number,
        request_id=f"request-{number}",
        resources=[KEY_ARN],
    )


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 20) -> None:
    """Wait until ``condition()`` holds (the writer is another process: poll)."""
    with anyio.fail_after(timeout):
        while True:
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await anyio.sleep(0.01)


async def stored_ids(data_dir: pathlib.Path) -> list[str]:
    """Return the stored events' request ids, in chain order, read through a separate
    connection; and check that no two events share an event id."""
    async with open_audit_store(data_dir) as store:
        records = await store.query(limit=100_000, descending=False)
    assert len({r.event_id for r in records}) == len(records), "an event id is used twice"
    return [msgspec.json.decode(r.event_json)["requestID"] for r in records]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_durable_record_is_committed_by_another_process_when_it_returns(
    data_dir: pathlib.Path, signer: CheckpointSigner
) -> None:
    async with open_audit_log(data_dir, signer) as log:
        assert log.pid is not None and log.pid != os.getpid()
        item = capture(1)
        await log.record(item)
        assert await stored_ids(data_dir) == [item.request_id]
        (stored,) = await log.store.query(limit=1)
        assert b"secret" not in stored.event_json
        assert msgspec.json.decode(stored.event_json)["requestParameters"] == {
            "keyId": KEY_ARN,
            "encryptionContext": {"n": "1"},
        }
    assert not alive(log.pid)


async def test_concurrent_records_share_commits_and_chain(
    data_dir: pathlib.Path, signer: CheckpointSigner
) -> None:
    items = [capture(n) for n in range(300)]
    async with open_audit_log(data_dir, signer) as log:
        async with anyio.create_task_group() as tg:
            for item in items:
                tg.start_soon(log.record, item)
        assert log.committed == 300
        assert log.batches < 300
    assert sorted(await stored_ids(data_dir)) == sorted(i.request_id for i in items)
    async with open_audit_store(data_dir) as store:
        assert (await verify_chain(store, signer)).ok


async def test_checkpoints_are_signed_with_this_process_key(
    data_dir: pathlib.Path, signer: CheckpointSigner
) -> None:
    async with open_audit_log(data_dir, signer, checkpoint_every=10) as log:
        for n in range(25):
            await log.record(capture(n))
    async with open_audit_store(data_dir) as store:
        assert [c.seq for c in await store.checkpoints()] == [10, 20, 25]
        assert (await verify_chain(store, signer)).ok
        forged = await verify_chain(store, random_signer())
        assert not forged.ok


async def test_relaxed_records_are_all_committed_at_close(
    data_dir: pathlib.Path, signer: CheckpointSigner
) -> None:
    async with open_audit_log(data_dir, signer, durable=False) as log:
        for n in range(500):
            await log.record(capture(n))
    assert len(await stored_ids(data_dir)) == 500
    assert log.lost == 0
    async with open_audit_store(data_dir) as store:
        assert (await store.checkpoints())[-1].seq == 500


async def test_fails_closed_while_writes_fail_and_recovers(
    data_dir: pathlib.Path, signer: CheckpointSigner
) -> None:
    items = [capture(n) for n in range(4)]
    async with open_audit_log(data_dir, signer, retry_interval=0.05) as log:
        await log.record(items[0])
        await log.store.execute_for_tests(FAIL_WRITES)
        with pytest.raises(KMSInternalException):
            await log.record(items[1])
        assert not log.healthy
        with pytest.raises(KMSInternalException):
            log.ensure_healthy()
        with pytest.raises(KMSInternalException):
            await log.record(items[2])  # refused at once, but kept
        await log.store.execute_for_tests("DROP TRIGGER fail_writes")
        await until(lambda: log.healthy)
        await log.record(items[3])
    # The refused requests' events were kept and written, once each, in order.
    assert await stored_ids(data_dir) == [item.request_id for item in items]


async def test_a_killed_writer_is_restarted_and_nothing_is_lost_or_stored_twice(
    data_dir: pathlib.Path, signer: CheckpointSigner
) -> None:
    answered: list[str] = []
    refused: list[str] = []

    async def one(item: CallCapture) -> None:
        try:
            await log.record(item)
        except KMSInternalException:
            refused.append(item.request_id)
        else:
            answered.append(item.request_id)

    async with open_audit_log(data_dir, signer, retry_interval=0.05) as log:
        first = log.pid
        assert first is not None
        async with anyio.create_task_group() as tg:
            for n in range(200):
                tg.start_soon(one, capture(n))
                if n == 100:
                    os.kill(first, signal.SIGKILL)
                await anyio.sleep(0)
        await until(lambda: log.healthy and log.pid not in (None, first))
        assert log.restarts == 1
        later = capture(999)
        await log.record(later)
    stored = await stored_ids(data_dir)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    # Every answered request is recorded; so is every refused one (kept and resent).
    assert set(answered) | set(refused) | {later.request_id} == set(stored)
    async with open_audit_store(data_dir) as store:
        assert (await verify_chain(store, signer)).ok


async def test_an_idle_writer_that_dies_is_replaced_and_requests_run_again(
    data_dir: pathlib.Path, signer: CheckpointSigner
) -> None:
    items = [capture(n) for n in range(2)]
    async with open_audit_log(data_dir, signer, retry_interval=0.05) as log:
        await log.record(items[0])
        first = log.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)  # nothing in flight: nothing to resend
        await until(lambda: log.pid not in (None, first))
        await until(lambda: log.healthy)
        await log.record(items[1])
    assert await stored_ids(data_dir) == [item.request_id for item in items]


async def test_the_backlog_is_bounded_while_the_writer_is_stalled(
    data_dir: pathlib.Path, signer: CheckpointSigner
) -> None:
    async with open_audit_log(data_dir, signer, durable=False, max_backlog=5) as log:
        assert log.pid is not None
        os.kill(log.pid, signal.SIGSTOP)
        try:
            for n in range(5):
                log.record_nowait(capture(n))
            with pytest.raises(KMSInternalException):
                log.record_nowait(capture(5))
            with anyio.move_on_after(0.2) as waited:
                await log.record(capture(6))  # waits for room
            assert waited.cancelled_caught
        finally:
            os.kill(log.pid, signal.SIGCONT)
        await log.record(capture(7))
        await log.flush()
    assert len(await stored_ids(data_dir)) == 6


async def test_closing_while_the_pipe_is_full_still_delivers_everything(
    data_dir: pathlib.Path, signer: CheckpointSigner
) -> None:
    """Output queued behind a full pipe when the log closes reaches the writer, then CLOSE."""
    items = [capture(n) for n in range(20_000)]  # several MB: far more than a pipe holds
    async with (
        anyio.create_task_group() as tg,
        open_audit_log(data_dir, signer, durable=False) as log,
    ):
        pid = log.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        for item in items:
            await log.record(item)
        await anyio.sleep(0.2)  # the sender has filled the pipe; the rest waits here

        async def resume() -> None:
            await anyio.sleep(0.5)  # after the close has begun
            os.kill(pid, signal.SIGCONT)

        tg.start_soon(resume)
    assert log.lost == 0
    assert len(await stored_ids(data_dir)) == len(items)


async def test_the_writer_gets_no_secret_from_the_environment(
    data_dir: pathlib.Path, signer: CheckpointSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KMS_ACTORS_ROOT_KEY", "c2VjcmV0LXJvb3Qta2V5LWJ5dGVzLTAwMDAwMDAwMDA=")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    async with open_audit_log(data_dir, signer) as log:
        assert log.pid is not None
        environment = pathlib.Path(f"/proc/{log.pid}/environ").read_bytes()
        await log.record(capture(1))  # and it works without them
    assert b"KMS_ACTORS_ROOT_KEY" not in environment
    assert b"EXAMPLEKEY" not in environment
    assert b"PATH=" in environment


async def test_the_writer_ignores_ctrl_c(data_dir: pathlib.Path, signer: CheckpointSigner) -> None:
    async with open_audit_log(data_dir, signer) as log:
        assert log.pid is not None
        os.kill(log.pid, signal.SIGINT)
        await anyio.sleep(0.2)
        await log.record(capture(1))
        assert log.restarts == 0
    assert len(await stored_ids(data_dir)) == 1


# --- the pipe, spoken directly to writer processes -------------------------------------------


class Writer:
    """A writer process started by hand."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.stdin = process.stdin
        self.stdout = BufferedByteReceiveStream(process.stdout)

    async def send_events(self, kind: int, items: list[CallCapture]) -> None:
        buffer = events_buffer(kind)
        for item in items:
            encoder.encode_into(item, buffer, -1)
        await self.stdin.send(bytes(seal_events(buffer, len(items))))

    async def receive(self) -> tuple[int, bytes]:
        length = int.from_bytes(await self.stdout.receive_exactly(4), "little")
        body = await self.stdout.receive_exactly(length)
        return body[0], body[1:]

    async def finish(self) -> int | None:
        """End its input (the service is gone, without CLOSE) and wait for it to exit."""
        await self.stdin.aclose()
        with anyio.fail_after(20):
            code = await self.process.wait()
        await self.process.aclose()
        return code

    async def progress_until(self, done: int) -> Progress:
        with anyio.fail_after(20):
            while True:
                kind, body = await self.receive()
                assert kind == PROGRESS
                progress = msgspec.msgpack.decode(body, type=Progress)
                if progress.done >= done:
                    return progress


async def start_writer(data_dir: pathlib.Path) -> Writer:
    process = await anyio.open_process(
        [sys.executable, "-m", "kms_actors.audit._writer_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
    )
    writer = Writer(process)
    hello = Hello(
        data_dir=str(data_dir),
        synchronous="FULL",
        checkpoint_every=1000,
        checkpoint_interval=3600,
        max_batch=1000,
        retry_interval=1.0,
        log_level=30,
        event_id_prefix="00000000-0000-4000-8000-",
        first_number=1,
    )
    await writer.stdin.send(frame(HELLO, hello))
    return writer


async def test_end_of_input_commits_what_was_sent_and_exits(data_dir: pathlib.Path) -> None:
    items = [capture(n) for n in range(3)]
    writer = await start_writer(data_dir)
    assert (await writer.receive())[0] == READY
    await writer.send_events(EVENTS, items)
    assert await writer.finish() == 0
    assert await stored_ids(data_dir) == [i.request_id for i in items]


async def stored_by_a_killed_writer(data_dir: pathlib.Path, items: list[CallCapture]) -> None:
    """Have a writer store ``items``, then kill it before it can say anything more."""
    first = await start_writer(data_dir)
    assert (await first.receive())[0] == READY
    await first.send_events(EVENTS, items)
    assert (await first.progress_until(len(items))).done == len(items)
    first.process.kill()
    await first.process.aclose()


async def test_a_replay_skips_what_the_previous_writer_stored(data_dir: pathlib.Path) -> None:
    items = [capture(n) for n in range(5)]
    await stored_by_a_killed_writer(data_dir, items[:3])
    second = await start_writer(data_dir)
    assert (await second.receive())[0] == READY
    # Its predecessor stored the first three but (say) never confirmed them.
    await second.send_events(REPLAY, items[:3])
    await second.send_events(EVENTS, items[3:])
    progress = await second.progress_until(5)
    assert progress.done == 5
    assert progress.committed == 2
    await second.finish()
    assert await stored_ids(data_dir) == [i.request_id for i in items]


async def test_a_replay_of_stored_events_only_is_confirmed_at_once(
    data_dir: pathlib.Path,
) -> None:
    """Nothing to write, yet the service must learn that the replayed events are done."""
    items = [capture(n) for n in range(3)]
    await stored_by_a_killed_writer(data_dir, items)
    second = await start_writer(data_dir)
    assert (await second.receive())[0] == READY
    await second.send_events(REPLAY, items)
    progress = await second.progress_until(3)  # fails after 20 s if it never says so
    assert (progress.done, progress.committed) == (3, 0)
    await second.finish()
    assert await stored_ids(data_dir) == [i.request_id for i in items]


async def test_a_writer_that_cannot_open_the_log_says_why(tmp_path: pathlib.Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    writer = await start_writer(not_a_directory)
    kind, body = await writer.receive()
    assert kind == BROKEN
    broken = msgspec.msgpack.decode(body, type=Broken)
    assert broken.error and broken.message
    with anyio.fail_after(20):
        await writer.process.wait()
    await writer.process.aclose()


def test_the_writer_process_imports_no_web_stack() -> None:
    """It starts with each service: ``import kms_actors`` must not pull in the HTTP layer."""
    code = "import sys, kms_actors.audit._writer_process; print('aiohttp' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
