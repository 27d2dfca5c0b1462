"""The audit writer: one task that appends events to the hash chain with group commit.

It runs in the audit writer process (``_writer_process``), fed by the service's ``AuditLog``
over a pipe; it can also run in-process (``open_audit_writer``), which its tests do.

``record(item)`` builds an event's JSON and columns (from an ``AuditEvent``, or from a
request's ``CallCapture``: ``_compose``), queues them and, in durable mode (the default),
returns only once the transaction holding them has committed; ``accept(item)`` queues without
waiting or refusing (the writer process uses it: the service bounds the backlog). The writer
takes everything queued while the previous batch was being written, chains it (hashes each
event onto the previous one) and commits it as the next batch: one INSERT statement, one
transaction and one fsync per batch, however many requests are waiting. Every
``checkpoint_every`` records, or ``checkpoint_interval`` seconds after the first record not yet
covered, the batch also stores a checkpoint of the chain head, signed by ``sign`` (the HSM's
checkpoint signer; in the writer process, a request to the service that holds it).

How a batch is written (measured with ``bench/bench_audit.py``):

- In the writer process SQLite runs inline, on the writer's own event loop thread (it has
  nothing else to do meanwhile; a thread hop per batch measured worse). In-process (tests)
  it runs on a thread, and each of a batch's statements (BEGIN, the records, the batch's
  row, its index entries, COMMIT: ``kms_actors.store``) is a hand-over to it.
- A burst is cut in two: a batch of at least ``_SPLIT_MIN`` events and at least twice the
  previous batch commits its first half alone, so that those callers work while the second
  half is written. Callers then come in two waves, one working while the other's events are
  written, and each later batch is a wave, not cut again. (Cutting every batch that found
  the writer idle, as before, cut the waves again whenever the writer was a little ahead,
  until they were small and the writer the bottleneck: Encrypt with 64 embedded callers went
  from ~31k to ~36k/s with this rule, and batches from ~16 events to 32.)

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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

import anyio

from kms_actors.audit._chain import checkpoint_message
from kms_actors.audit._compose import Composed, Composer
from kms_actors.audit._event import AuditEvent, CallCapture
from kms_actors.audit._head import ChainHead
from kms_actors.domain.clock import Clock, SystemClock
from kms_actors.errors import KMSInternalException
from kms_actors.hsm import CheckpointSigner
from kms_actors.store import (
    GENESIS_HASH,
    AuditChainConflict,
    AuditStore,
    Checkpoint,
    open_audit_store,
)

log = logging.getLogger("kms_actors.audit")

# Signs a checkpoint message (``_chain.checkpoint_message``): the HSM's signer, or a request
# to the process that holds it. None means it cannot be signed now (that process is gone):
# the batch is written without its checkpoint, and the records wait for the next one.
Sign = Callable[[bytes], Awaitable[bytes | None]]


# A batch of at least this many events, and twice the previous batch, takes only half.
_SPLIT_MIN = 8


class AuditWriter:
    """The audit writer; get one from ``open_audit_writer``.

    ``batches``, ``committed``, ``checkpoints`` and ``lost`` count what the writer did.
    """

    def __init__(
        self,
        store: AuditStore,
        sign: Sign,
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
        self._clock = clock
        self._sign = sign
        self._chain = ChainHead(clock, checkpoint_every)
        self._checkpoint_interval = checkpoint_interval
        self._max_batch = max_batch
        self._max_backlog = max_backlog
        self._retry_interval = retry_interval
        self._composer = Composer()
        self._pending: list[Composed] = []
        self._last_batch = 0  # the size of the batch written last (see the module docstring)
        # Events are numbered in queue order. Those before ``_written`` are committed, those
        # before ``_cut`` are committed or in the batch being written; callers waiting for
        # an event in that batch wait on ``_in_flight``, the others on ``_open``.
        self._queued = 0
        self._cut = 0
        self._written = 0
        self._fail_mark = 0  # waiters for unwritten events before it are answered: failed
        # The events are made only when someone waits (relaxed mode never does).
        self._open: anyio.Event | None = None
        self._in_flight: anyio.Event | None = None
        self._progress: anyio.Event | None = None  # set after each write attempt
        self._wake = anyio.Event()  # the idle writer waits on it
        self._idle = False
        self._timer_wake = anyio.Event()  # set when records start waiting for a checkpoint
        self._failure: Exception | None = None
        self._closing = False
        self._closed = False
        # Called after every write attempt (and at close), before anyone waiting is woken: the
        # writer process reports its progress from it, at once.
        self.on_progress: Callable[[], None] | None = None
        self.batches = 0
        self.committed = 0
        self.checkpoints = 0
        self.lost = 0

    @property
    def head_seq(self) -> int:
        """The ``seq`` of the chain's last committed record (0 when there are none)."""
        return self._chain.head[0]

    @property
    def written(self) -> int:
        """How many of the events queued so far are committed (they are written in order)."""
        return self._written

    @property
    def healthy(self) -> bool:
        """Whether events are being written (False while writes fail or after close)."""
        return self._failure is None and not self._closed

    def ensure_healthy(self) -> None:
        """Raise unless events can be recorded now (check before running a request).

        Raises:
            KMSInternalException: the audit log cannot be written or is closed.
        """
        if self._failure is not None or self._closed:
            raise KMSInternalException()

    async def record(self, item: CallCapture | AuditEvent) -> None:
        """Record one event (or captured request); in durable mode, return once committed.

        Waits (in either mode) while ``max_backlog`` events are already queued. An event that
        cannot be built at all (a bug) raises its error here and is not queued.

        Raises:
            KMSInternalException: the audit log cannot be written (fail closed) or is closed.
        """
        composed = self._composer.compose(item)
        while len(self._pending) >= self._max_backlog and self.healthy:
            await self._next_attempt()
        index = self._enqueue(composed)
        if not self.durable:
            return
        while True:  # one wake-up per caller normally: its batch's event
            if index < self._cut:
                if self._in_flight is None:
                    self._in_flight = anyio.Event()
                await self._in_flight.wait()
            else:
                if self._open is None:
                    self._open = anyio.Event()
                await self._open.wait()
            if index < self._written:
                return
            if index < self._fail_mark:
                raise KMSInternalException()

    def record_nowait(self, item: CallCapture | AuditEvent) -> None:
        """Queue one event for the writer without waiting, in either mode.

        Raises:
            KMSInternalException: the audit log cannot be written, is closed, or already has
                ``max_backlog`` events queued.
        """
        if len(self._pending) >= self._max_backlog:
            raise KMSInternalException()
        self._enqueue(self._composer.compose(item))

    def accept(self, item: CallCapture | AuditEvent, event_id: str = "") -> bool:
        """Queue one event without waiting and without refusing, even while writes fail.

        The writer process takes the service's events this way: the service bounds the
        backlog and answers its callers from ``written``; it names the events it captured
        (``event_id``). Returns False, and queues nothing, if the event cannot be built at
        all (a bug, logged).

        Raises:
            KMSInternalException: the log is closed.
        """
        if self._closed:
            raise KMSInternalException()
        try:
            composed = self._composer.compose(item, event_id)
        except Exception:
            log.exception("an audit event could not be built")
            return False
        self._pending.append(composed)
        self._queued += 1
        if self._idle:
            self._wake.set()
        return True

    async def flush(self) -> None:
        """Return once every event queued before the call is committed.

        Raises:
            KMSInternalException: the audit log cannot be written or is closed.
        """
        target = self._queued
        while self._written < target:
            self.ensure_healthy()
            await self._next_attempt()

    def _enqueue(self, item: Composed) -> int:
        if self._closed:
            raise KMSInternalException()
        if self._failure is not None:
            # Keep the event for the retry, but fail the request now: nothing waits on disk.
            self._keep(item)
            raise KMSInternalException()
        self._pending.append(item)
        index = self._queued
        self._queued = index + 1
        if self._idle:
            self._wake.set()
        return index

    def _keep(self, item: Composed) -> None:
        if len(self._pending) < self._max_backlog:
            self._pending.append(item)
            self._queued += 1
        else:
            self.lost += 1
            log.error("audit backlog full while the log cannot be written; event lost")

    # --- the writer task ---------------------------------------------------------------------

    async def _load(self) -> None:
        head = await self.store.last()
        signed = await self.store.last_checkpoint() or await self.store.anchor()
        self._chain.load(head, signed.seq if signed is not None else 0)

    async def _run(self) -> None:
        while True:
            if not self._pending and not self._chain.checkpoint_due:
                self._idle = True
                await self._wake.wait()
                self._wake = anyio.Event()
                self._idle = False
            # Shielded: a batch in flight is committed and answered even during shutdown.
            with anyio.CancelScope(shield=True):
                await self._flush()
            if self._failure is not None:
                await self._clock.sleep_until(self._clock.now() + self._retry_interval)

    async def _checkpoint_timer(self) -> None:
        while True:
            since = self._chain.unsigned_since
            if since is not None:
                await self._clock.sleep_until(since + self._checkpoint_interval)
                if self._chain.unsigned_since != since:
                    continue  # a checkpoint was written meanwhile
                self._chain.checkpoint_due = True
                self._wake.set()
            self._timer_wake = anyio.Event()
            await self._timer_wake.wait()

    async def _flush(self, *, whole: bool = False) -> None:
        while self._pending or self._chain.checkpoint_due:
            size = min(len(self._pending), self._max_batch)
            if not whole and size >= max(_SPLIT_MIN, 2 * self._last_batch):
                size = (size + 1) // 2  # a burst: see the module docstring
            self._last_batch = size
            items = self._pending[:size]
            del self._pending[:size]
            self._cut += size
            # The batch's callers wait on ``_open`` (so may some queued after it, who look
            # again when it is done); callers from now on wait on a fresh one.
            self._in_flight, self._open = self._open, None
            try:
                written = await self._write(items)
            except Exception as exc:
                self._failed(items, exc)
                return
            self._committed(len(items), *written)

    async def _write(
        self, items: list[Composed]
    ) -> tuple[int, tuple[int, bytes], Checkpoint | None]:
        chain = self._chain
        for attempt in range(2):
            rows, head = chain.rows(items)
            due = chain.checkpoint_for(head, len(rows), last=self._closing and not self._pending)
            checkpoint = None
            if due is not None:
                seq, record_hash, created = due
                signature = await self._sign(checkpoint_message(seq, record_hash, created))
                if signature is not None:
                    checkpoint = Checkpoint(
                        seq=seq, hash=record_hash, signature=signature, created=created
                    )
                else:
                    chain.checkpoint_due = False  # cannot sign now: the records wait
            try:
                if rows:
                    await self.store.append_rows(rows, checkpoint)
                elif checkpoint is not None:
                    await self.store.add_checkpoint(checkpoint)
            except AuditChainConflict:
                if attempt:
                    raise
                # Someone else extended the chain (another process): continue from its head.
                stored = await self.store.last()
                chain.head = stored if stored is not None else (0, GENESIS_HASH)
                continue
            return len(rows), head, checkpoint
        raise AssertionError("unreachable")

    def _committed(
        self, size: int, count: int, head: tuple[int, bytes], checkpoint: Checkpoint | None
    ) -> None:
        if self._failure is not None:
            log.warning("audit log writes again; %d queued events committed", count)
            self._failure = None
        if self._chain.committed(count, head, checkpoint):
            self._timer_wake.set()
        self.batches += 1 if count else 0
        self.committed += count
        self.checkpoints += 1 if checkpoint is not None else 0
        self._written += size
        self._wake_waiters(open_too=False)

    async def _next_attempt(self) -> None:
        if self._progress is None:
            self._progress = anyio.Event()
        await self._progress.wait()

    def _wake_waiters(self, *, open_too: bool) -> None:
        if self.on_progress is not None:
            self.on_progress()
        events = (self._in_flight, self._progress, self._open if open_too else None)
        for event in events:
            if event is not None:
                event.set()
        self._in_flight = self._progress = None
        if open_too:
            self._open = None

    def _answer_all_failed(self) -> None:
        self._fail_mark = self._queued
        self._wake_waiters(open_too=True)

    def _failed(self, items: list[Composed], error: Exception) -> None:
        if self._failure is None:
            log.error("audit log write failed; requests fail until it recovers", exc_info=error)
        self._failure = error
        # Keep the batch for the retry, ahead of what came after it, and answer everyone
        # waiting (this batch and those queued behind it) now: a later retry commits their
        # events silently.
        self._pending[:0] = items
        self._cut = self._written
        self._answer_all_failed()

    async def _close(self) -> None:
        """Commit what is queued (one attempt), write a final checkpoint, refuse new events."""
        self._closing = True
        self._chain.checkpoint_due = True  # the final checkpoint covers the head
        self._failure = None  # one last attempt, even after failures
        await self._flush(whole=True)
        unwritten = len(self._pending)
        self._closed = True
        if unwritten:
            self.lost += unwritten
            log.error("audit log closed with %d events it could not write", unwritten)
            self._pending.clear()
        self._answer_all_failed()


@contextlib.asynccontextmanager
async def open_audit_writer(
    data_dir: pathlib.Path,
    signer: CheckpointSigner | Sign,
    *,
    durable: bool = True,
    clock: Clock | None = None,
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
    checkpoint_every: int = 1000,
    checkpoint_interval: float = 60.0,
    max_batch: int = 1000,
    max_backlog: int = 100_000,
    retry_interval: float = 1.0,
    inline: bool = False,
) -> AsyncIterator[AuditWriter]:
    """Open the audit log in ``data_dir/audit.sqlite3`` and run its writer until exit.

    On exit (also when cancelled) everything queued is committed, a final checkpoint covers
    the chain head, and the database is closed. Works on asyncio and Trio.

    Args:
        data_dir: the data directory (created 0700 if missing).
        signer: the HSM's checkpoint signer (``kms_actors.hsm.checkpoint_signer(root)``), or
            an async function that signs a checkpoint message with it.
        durable: True: ``record`` returns after commit; False: right after queueing.
        clock: the service clock (event-independent timers: checkpoints, retries).
        synchronous: SQLite's ``synchronous`` for the audit file (``FULL`` survives power
            loss; ``NORMAL`` only a process crash).
        checkpoint_every: sign a checkpoint at least every this many records...
        checkpoint_interval: ...and at most this many seconds after a record is committed.
        max_batch: the most events one transaction holds.
        max_backlog: the most events queued before ``record`` waits for room.
        retry_interval: seconds between write attempts while the log cannot be written.
        inline: run SQLite on the event loop's thread (for the writer process, which has
            nothing else to do meanwhile; see ``kms_actors.store``).
    """
    if checkpoint_every < 1 or max_batch < 1 or max_backlog < 1:
        raise ValueError("checkpoint_every, max_batch and max_backlog must be at least 1")
    clock = clock or SystemClock()
    error: Exception | None = None
    async with open_audit_store(
        data_dir, synchronous=synchronous, clock=clock, inline=inline
    ) as store:
        audit = AuditWriter(
            store,
            _async_sign(signer) if isinstance(signer, CheckpointSigner) else signer,
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


def _async_sign(signer: CheckpointSigner) -> Sign:
    sign = signer.sign

    async def signed(message: bytes) -> bytes | None:
        return sign(message)

    return signed
