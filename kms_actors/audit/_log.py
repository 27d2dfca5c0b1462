"""The audit writer: one task that appends events to the hash chain with group commit.

``record(event)`` queues the event and, in durable mode (the default), returns only once the
transaction holding it has committed. The writer takes everything queued while the previous
batch was being written and commits it as the next batch: one transaction and one fsync per
batch, however many requests are waiting, so durability costs little under load. Every
``checkpoint_every`` records, or ``checkpoint_interval`` seconds after the first record not yet
covered, the batch's transaction also stores a signed checkpoint of the chain head.

Relaxed mode (``durable=False``) returns as soon as the event is queued; the writer commits it
in the background and everything queued is flushed when the log closes.

Failing closed: if a write fails, every caller still waiting gets ``KMSInternalException``,
and from then on ``record`` raises ``KMSInternalException`` at once (``ensure_healthy`` too),
in both modes. The events themselves are kept, in order, up to ``max_backlog`` of them, and
the writer retries every ``retry_interval`` seconds; the first write that succeeds commits
them and ``record`` works again. So an operation that took effect before its event could be
written still appears in the log (although its caller got an error). Events beyond the
backlog, or still unwritten when the log closes, are lost and logged as an error.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
from collections.abc import AsyncIterator
from typing import Literal

import anyio
import msgspec

from kms_actors.audit._chain import chain_hash, encode_event, sign_checkpoint, unchained_record
from kms_actors.audit._event import AuditEvent
from kms_actors.domain.clock import Clock, SystemClock
from kms_actors.errors import KMSInternalException
from kms_actors.hsm import CheckpointSigner
from kms_actors.store import (
    GENESIS_HASH,
    AuditChainConflict,
    AuditRecord,
    AuditStore,
    Checkpoint,
    open_audit_store,
)

log = logging.getLogger("kms_actors.audit")


class _Entry:
    """One queued event; ``done`` is set once it is committed (or its write failed)."""

    __slots__ = ("done", "failed", "record")

    def __init__(self, record: AuditRecord, *, waited: bool) -> None:
        self.record = record
        self.done = anyio.Event() if waited else None
        self.failed = False


class AuditLog:
    """The audit writer; get one from ``open_audit_log``.

    ``batches``, ``committed``, ``checkpoints`` and ``lost`` count what the writer did.
    """

    def __init__(
        self,
        store: AuditStore,
        signer: CheckpointSigner,
        *,
        durable: bool,
        clock: Clock,
        checkpoint_every: int,
        checkpoint_interval: float,
        max_batch: int,
        max_backlog: int,
        retry_interval: float,
    ) -> None:
        self.store = store
        self.durable = durable
        self._signer = signer
        self._clock = clock
        self._checkpoint_every = checkpoint_every
        self._checkpoint_interval = checkpoint_interval
        self._max_batch = max_batch
        self._max_backlog = max_backlog
        self._retry_interval = retry_interval
        self._pending: list[_Entry] = []
        self._wake = anyio.Event()  # the writer waits on it
        self._room = anyio.Event()  # set (and replaced) after each write attempt
        self._timer_wake = anyio.Event()  # set when records start waiting for a checkpoint
        self._head = (0, GENESIS_HASH)
        self._unsigned = 0  # committed records not covered by a checkpoint
        self._unsigned_since: float | None = None
        self._checkpoint_due = False
        self._failure: Exception | None = None
        self._closing = False
        self._closed = False
        self._queued = 0  # events ever queued ...
        self._written = 0  # ... and how many of them, in queue order, are committed
        self.batches = 0
        self.committed = 0
        self.checkpoints = 0
        self.lost = 0

    @property
    def healthy(self) -> bool:
        """Whether events are being written (False while writes fail or after close)."""
        return self._failure is None and not self._closed

    def ensure_healthy(self) -> None:
        """Raise unless events can be recorded now (check before running a request).

        Raises:
            KMSInternalException: the audit log cannot be written or is closed.
        """
        if not self.healthy:
            raise KMSInternalException()

    async def record(self, event: AuditEvent) -> None:
        """Record one event; in durable mode, return once it is committed.

        Waits (in either mode) while ``max_backlog`` events are already queued.

        Raises:
            KMSInternalException: the audit log cannot be written (fail closed) or is closed.
        """
        record = unchained_record(event, encode_event(event))
        while len(self._pending) >= self._max_backlog and self.healthy:
            await self._room.wait()
        entry = self._enqueue(record, waited=self.durable)
        if entry.done is not None:
            await entry.done.wait()
            if entry.failed:
                raise KMSInternalException()

    def record_nowait(self, event: AuditEvent) -> None:
        """Queue one event for the writer without waiting, in either mode.

        Raises:
            KMSInternalException: the audit log cannot be written, is closed, or already has
                ``max_backlog`` events queued.
        """
        if len(self._pending) >= self._max_backlog:
            raise KMSInternalException()
        self._enqueue(unchained_record(event, encode_event(event)), waited=False)

    async def flush(self) -> None:
        """Return once every event queued before the call is committed.

        Raises:
            KMSInternalException: the audit log cannot be written or is closed.
        """
        target = self._queued
        while self._written < target:
            self.ensure_healthy()
            await self._room.wait()

    def _enqueue(self, record: AuditRecord, *, waited: bool) -> _Entry:
        if self._closed:
            raise KMSInternalException()
        if self._failure is not None:
            # Keep the event for the retry, but fail the request now: nothing waits on disk.
            self._keep(_Entry(record, waited=False))
            raise KMSInternalException()
        entry = _Entry(record, waited=waited)
        self._pending.append(entry)
        self._queued += 1
        self._wake.set()
        return entry

    def _keep(self, entry: _Entry) -> None:
        if len(self._pending) < self._max_backlog:
            self._pending.append(entry)
            self._queued += 1
        else:
            self.lost += 1
            log.error("audit backlog full while the log cannot be written; event lost")

    # --- the writer task ---------------------------------------------------------------------

    async def _load(self) -> None:
        head = await self.store.last()
        self._head = head if head is not None else (0, GENESIS_HASH)
        signed = await self.store.last_checkpoint() or await self.store.anchor()
        self._unsigned = self._head[0] - (signed.seq if signed is not None else 0)
        if self._unsigned > 0:
            self._unsigned_since = self._clock.now()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            # Shielded: a batch in flight is committed and answered even during shutdown.
            with anyio.CancelScope(shield=True):
                await self._flush()
            if self._failure is not None:
                await self._clock.sleep_until(self._clock.now() + self._retry_interval)
                self._wake.set()

    async def _checkpoint_timer(self) -> None:
        while True:
            since = self._unsigned_since
            if since is not None:
                await self._clock.sleep_until(since + self._checkpoint_interval)
                if self._unsigned_since != since:
                    continue  # a checkpoint was written meanwhile
                self._checkpoint_due = True
                self._wake.set()
            self._timer_wake = anyio.Event()
            await self._timer_wake.wait()

    async def _flush(self) -> None:
        while self._pending or self._checkpoint_due:
            batch = self._pending[: self._max_batch]
            del self._pending[: len(batch)]
            try:
                records, checkpoint = await self._write(batch)
            except Exception as exc:
                self._failed(batch, exc)
                return
            self._committed(batch, records, checkpoint)

    def _chain(self, batch: list[_Entry]) -> list[AuditRecord]:
        seq, prev = self._head
        records = []
        for entry in batch:
            seq += 1
            record_hash = chain_hash(prev, entry.record.event_json)
            records.append(
                msgspec.structs.replace(entry.record, seq=seq, prev_hash=prev, hash=record_hash)
            )
            prev = record_hash
        return records

    def _checkpoint_for(self, records: list[AuditRecord]) -> Checkpoint | None:
        unsigned = self._unsigned + len(records)
        last_batch = self._closing and not self._pending
        wanted = unsigned >= self._checkpoint_every or self._checkpoint_due or last_batch
        if not wanted or unsigned == 0:
            self._checkpoint_due = self._checkpoint_due and unsigned > 0
            return None
        seq, record_hash = (records[-1].seq, records[-1].hash) if records else self._head
        return sign_checkpoint(self._signer, seq, record_hash, self._clock.now())

    async def _write(self, batch: list[_Entry]) -> tuple[list[AuditRecord], Checkpoint | None]:
        for attempt in range(2):
            records = self._chain(batch)
            checkpoint = self._checkpoint_for(records)
            try:
                if records:
                    await self.store.append(records, checkpoint)
                elif checkpoint is not None:
                    await self.store.add_checkpoint(checkpoint)
            except AuditChainConflict:
                if attempt:
                    raise
                # Someone else extended the chain (another process): continue from its head.
                head = await self.store.last()
                self._head = head if head is not None else (0, GENESIS_HASH)
                continue
            return records, checkpoint
        raise AssertionError("unreachable")

    def _committed(
        self, batch: list[_Entry], records: list[AuditRecord], checkpoint: Checkpoint | None
    ) -> None:
        if self._failure is not None:
            log.warning("audit log writes again; %d queued events committed", len(records))
            self._failure = None
        if records:
            self._head = (records[-1].seq, records[-1].hash)
            self.batches += 1
            self.committed += len(records)
        if checkpoint is not None:
            self.checkpoints += 1
            self._unsigned, self._unsigned_since, self._checkpoint_due = 0, None, False
        elif records:
            self._unsigned += len(records)
            if self._unsigned_since is None:
                self._unsigned_since = self._clock.now()
                self._timer_wake.set()
        self._written += len(batch)
        for entry in batch:
            if entry.done is not None:
                entry.done.set()
        self._room_changed()

    def _room_changed(self) -> None:
        self._room.set()
        self._room = anyio.Event()

    def _failed(self, batch: list[_Entry], error: Exception) -> None:
        if self._failure is None:
            log.error("audit log write failed; requests fail until it recovers", exc_info=error)
        self._failure = error
        # Keep the batch for the retry, ahead of what came after it, and answer everyone
        # waiting (this batch and those queued behind it) now: a later retry commits their
        # events silently.
        self._pending[:0] = batch
        for entry in self._pending:
            entry.failed = True
            if entry.done is not None:
                entry.done.set()
        self._room_changed()

    async def _close(self) -> None:
        """Commit what is queued (one attempt), write a final checkpoint, refuse new events."""
        self._closing = True
        self._checkpoint_due = True  # the final checkpoint covers the head
        self._failure = None  # one last attempt, even after failures
        await self._flush()
        unwritten = len(self._pending)
        self._closed = True
        if unwritten:
            self.lost += unwritten
            log.error("audit log closed with %d events it could not write", unwritten)
            for entry in self._pending:
                entry.failed = True
                if entry.done is not None:
                    entry.done.set()
            self._pending.clear()
        self._room_changed()


@contextlib.asynccontextmanager
async def open_audit_log(
    data_dir: pathlib.Path,
    signer: CheckpointSigner,
    *,
    durable: bool = True,
    clock: Clock | None = None,
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
    checkpoint_every: int = 1000,
    checkpoint_interval: float = 60.0,
    max_batch: int = 1000,
    max_backlog: int = 100_000,
    retry_interval: float = 1.0,
) -> AsyncIterator[AuditLog]:
    """Open the audit log in ``data_dir/audit.sqlite3`` and run its writer until exit.

    On exit (also when cancelled) everything queued is committed, a final checkpoint covers
    the chain head, and the database is closed. Works on asyncio and Trio.

    Args:
        data_dir: the data directory (created 0700 if missing).
        signer: the HSM's checkpoint signer (``kms_actors.hsm.checkpoint_signer(root)``).
        durable: True: ``record`` returns after commit; False: right after queueing.
        clock: the service clock (event-independent timers: checkpoints, retries).
        synchronous: SQLite's ``synchronous`` for the audit file (``FULL`` survives power
            loss; ``NORMAL`` only a process crash).
        checkpoint_every: sign a checkpoint at least every this many records...
        checkpoint_interval: ...and at most this many seconds after a record is committed.
        max_batch: the most events one transaction holds.
        max_backlog: the most events queued before ``record`` waits for room.
        retry_interval: seconds between write attempts while the log cannot be written.
    """
    if checkpoint_every < 1 or max_batch < 1 or max_backlog < 1:
        raise ValueError("checkpoint_every, max_batch and max_backlog must be at least 1")
    clock = clock or SystemClock()
    error: Exception | None = None
    async with open_audit_store(data_dir, synchronous=synchronous, clock=clock) as store:
        audit = AuditLog(
            store,
            signer,
            durable=durable,
            clock=clock,
            checkpoint_every=checkpoint_every,
            checkpoint_interval=checkpoint_interval,
            max_batch=max_batch,
            max_backlog=max_backlog,
            retry_interval=retry_interval,
        )
        await audit._load()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(audit._run, name="audit-writer")
                tg.start_soon(audit._checkpoint_timer, name="audit-checkpoints")
                try:
                    yield audit
                except Exception as exc:
                    # Re-raised below, outside the task group, so the caller sees its own
                    # exception rather than an ExceptionGroup around it.
                    error = exc
                finally:
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await audit._close()
    if error is not None:
        raise error
