"""The service's audit log: events go to an audit writer process, answers wait for its commits.

``open_audit_log`` starts the writer process (``_writer_process``, which runs the
``AuditWriter``: group commit, hash chain, checkpoints) and keeps a read-only view of the
audit database (``store``) for queries. ``record(item)`` encodes the request's captured
pieces (a ``CallCapture``, a few hundred bytes of MessagePack) onto the next frame for the
writer and, in durable mode (the default), returns once the writer reports the transaction
holding the event committed. Everything else an event costs (its JSON, the hash chain, SQLite
and the fsync) is paid in the writer process, on the other core, not on the event loop that
answers requests (in-process, building and writing events took more CPU than answering the
requests: ``bench/README.md``).

On the service's side an event costs: one struct, one MessagePack encoding onto the frame in
the making (``_outbox``), and (durable mode) one wake-up when its frame is confirmed. A sender
task sends that frame each time it runs (one system call: ``_pipe.FramePipe``), while at most a
few frames are unconfirmed; callers of a frame wait on one event for the frame.

``record_deferred(item, deliver)`` is the same without a waiting caller: it queues the event at
once and calls ``deliver(committed)`` when its frame is confirmed (or the log fails). The key
actors answer the hot crypto requests that way (``kms_actors.ops._deferred``): the answer is
held here and released with the commit, so the caller is woken once, not twice.

Failing closed, as the writer does: while the writer reports that writes fail, or while its
process is down, every caller still waiting gets ``KMSInternalException`` and ``record``
refuses at once (keeping the event, up to ``max_backlog``). The writer keeps retrying; the
first write that succeeds commits the kept events and ``record`` works again. Requests
refused at once (``ensure_healthy``) are not run, so they leave no event.

Supervised: if the writer process dies, it is started again (after ``retry_interval``) and
takes over every event its predecessor had not confirmed (``_link``). The checkpoint key never
leaves this process: the writer asks for each signature over the pipe.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Literal

import anyio
import anyio.abc

from kms_actors.audit._event import AuditEvent, CallCapture
from kms_actors.audit._link import WriterLink
from kms_actors.audit._outbox import Outbox
from kms_actors.audit._pipe import (
    CLOSE,
    Hello,
    Progress,
    frame,
)
from kms_actors.domain.clock import Clock, SystemClock
from kms_actors.errors import KMSInternalException
from kms_actors.hsm import CheckpointSigner
from kms_actors.store import AuditStore, open_audit_store

log = logging.getLogger("kms_actors.audit")

_FRAMES_IN_FLIGHT = 4  # frames sent and not yet confirmed, at most (see ``_send_loop``)
_CLOSE_TIMEOUT = 60.0  # seconds for the writer to commit what is queued and exit


class AuditLog:
    """The service's audit log; get one from ``open_audit_log``.

    ``store`` reads the audit database (queries, GetKeyLastUsage); ``pid`` is the writer
    process's. ``committed``, ``batches``, ``checkpoints`` and ``lost`` are the writer's
    totals, ``restarts`` how often its process was started again.
    """

    def __init__(
        self,
        store: AuditStore,
        signer: CheckpointSigner,
        hello: Hello,
        *,
        durable: bool,
        max_backlog: int,
        retry_interval: float,
    ) -> None:
        self.store = store
        self.durable = durable
        self._max_backlog = max_backlog
        self._retry_interval = retry_interval
        # Events are numbered in the order they are queued (``_outbox``); those before
        # ``_done`` are confirmed (committed, or in ``_bad``: unbuildable).
        self._outbox = Outbox()
        self._link = WriterLink(hello, signer, self._outbox, self._report)
        self._done = 0
        self._bad: set[int] = set()
        # (event number, deliver) of ``record_deferred`` events not confirmed yet, in order.
        self._deferred: collections.deque[tuple[int, Callable[[bool], None]]] = collections.deque()
        self._progress: anyio.Event | None = None  # set on every report and failure
        self._fail_mark = 0  # waiters for unconfirmed events before it are answered: failed
        self._failure: str | None = None
        self._wake = anyio.Event()  # wakes the idle sender
        self._sender_idle = False
        self._closing = False
        self._closed = False
        self.restarts = 0
        self.lost = 0

    # --- what the service uses ---------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """Whether events are being written (False while writes fail or after close)."""
        return self._failure is None and not self._closed

    @property
    def pid(self) -> int | None:
        """The writer process's id (None while it is not running)."""
        return self._link.pid

    @property
    def committed(self) -> int:
        """How many records the writer processes committed."""
        return self._link.committed

    @property
    def batches(self) -> int:
        """How many transactions the writer processes committed records in."""
        return self._link.batches

    @property
    def checkpoints(self) -> int:
        """How many signed checkpoints the writer processes stored."""
        return self._link.checkpoints

    @property
    def deferrable(self) -> bool:
        """Whether to use ``record_deferred`` now: durable mode, and room in the backlog."""
        return self.durable and self._outbox.queued - self._done < self._max_backlog

    def ensure_healthy(self) -> None:
        """Raise unless events can be recorded now (check before running a request).

        Raises:
            KMSInternalException: the audit log cannot be written or is closed.
        """
        if self._failure is not None or self._closed:
            raise KMSInternalException()

    async def record(self, item: CallCapture | AuditEvent) -> None:
        """Record one event; in durable mode, return once it is committed.

        Waits (in either mode) while ``max_backlog`` events are unconfirmed. An event that
        cannot be encoded at all (a bug) raises its error here and is not queued.

        Raises:
            KMSInternalException: the audit log cannot be written (fail closed) or is closed.
        """
        while self._outbox.queued - self._done >= self._max_backlog and self.healthy:
            await self._wait_progress()
        index = self._put(item)
        if not self.durable:
            return
        waiting = self._outbox.waiting
        if waiting is None:
            waiting = self._outbox.waiting = anyio.Event()
        await waiting.wait()  # one wake-up normally: when the event's frame is confirmed
        while True:
            if index < self._done:
                if index in self._bad:
                    self._bad.discard(index)
                    raise KMSInternalException()
                return
            if index < self._fail_mark:
                raise KMSInternalException()
            await self._wait_progress()

    def record_nowait(self, item: CallCapture | AuditEvent) -> None:
        """Queue one event for the writer without waiting, in either mode.

        Raises:
            KMSInternalException: the audit log cannot be written, is closed, or already has
                ``max_backlog`` events unconfirmed.
        """
        if self._outbox.queued - self._done >= self._max_backlog:
            raise KMSInternalException()
        self._put(item)

    def record_deferred(self, item: CallCapture, deliver: Callable[[bool], None]) -> None:
        """Queue one event now; call ``deliver(committed)`` once it is confirmed.

        ``deliver(True)`` runs when the writer reports the frame holding the event committed,
        ``deliver(False)`` when it cannot be (writes fail, the writer process died, the log
        closed) or the writer could not build it; exactly one of them, from the log's own task,
        and it must not raise. For durable answers without a waiting task: whoever answers the
        request hands its answer to ``deliver``. Check ``deferrable`` first: this never waits
        for room in the backlog.

        Raises:
            KMSInternalException: the audit log cannot be written now (the event is kept for
                when writes work again, as ``record`` keeps it) or is closed.
        """
        self._deferred.append((self._put(item), deliver))

    async def flush(self) -> None:
        """Return once every event queued before the call is committed.

        Raises:
            KMSInternalException: the audit log cannot be written or is closed.
        """
        target = self._outbox.queued
        while self._done < target:
            self.ensure_healthy()
            await self._wait_progress()

    # --- queueing ----------------------------------------------------------------------------

    def _put(self, item: CallCapture | AuditEvent) -> int:
        if self._closed or self._closing:
            raise KMSInternalException()
        if self._failure is not None:
            # Keep the event for when writes work again, but fail the request now.
            if self._outbox.queued - self._done < self._max_backlog:
                self._append(item)
            else:
                self.lost += 1
                log.error("audit backlog full while the log cannot be written; event lost")
            raise KMSInternalException()
        return self._append(item)

    def _append(self, item: CallCapture | AuditEvent) -> int:
        index = self._outbox.append(item)
        if len(self._outbox.frames) < _FRAMES_IN_FLIGHT:
            self._wake_sender()
        return index

    async def _wait_progress(self) -> None:
        if self._progress is None:
            self._progress = anyio.Event()
        await self._progress.wait()

    def _woken(self) -> None:
        if self._progress is not None:
            self._progress.set()
            self._progress = None

    # --- the sender task ---------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            # Events wait in the buffer while a few frames are unconfirmed: the writer commits
            # everything it has each time, so more frames would not commit anything sooner,
            # they would only cost more system calls and reports on both sides (measured with
            # bench/bench_audit.py: 4 beats 1, 2 and 64).
            outbox = self._outbox
            while not outbox.unsent or len(outbox.frames) >= _FRAMES_IN_FLIGHT:
                self._sender_idle = True
                await self._wake.wait()
                self._wake = anyio.Event()
            writer = self._link.writer
            if writer is None:
                await self._link.connected.wait()
                continue
            writer.pipe.send(outbox.take_frame())

    def _wake_sender(self) -> None:
        if self._sender_idle:
            self._sender_idle = False
            self._wake.set()

    # --- the writer process ------------------------------------------------------------------

    async def _run(self) -> None:
        """Read the writer's reports; start it again whenever it dies."""
        while True:
            writer = self._link.writer
            if writer is not None:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(writer.pipe.drain, name="audit-pipe-drain")
                    await self._link.serve(writer)
                    tg.cancel_scope.cancel()
                if self._closing:
                    return
                self._link.lost()
                self._fail(f"audit writer process {writer.process.pid} exited")
                await writer.stop()
            await anyio.sleep(self._retry_interval)
            try:
                await self._link.start()
                self.restarts += 1
                log.warning("audit writer process started again (pid %s)", self.pid)
                # Requests may run again: the new writer reports a failing write itself.
                self._failure = None
                self._woken()
            except Exception:
                log.exception("the audit writer process could not be started again")

    def _report(self, progress: Progress, base: int) -> None:
        for position in progress.bad:
            index = base + position
            if index >= self._done:
                self._bad.add(index)
        done = base + progress.done
        if done > self._done:
            self._done = done
            self._outbox.confirm(done)
            deferred = self._deferred
            while deferred and deferred[0][0] < done:
                index, deliver = deferred.popleft()
                if index in self._bad:
                    self._bad.discard(index)
                    deliver(False)
                else:
                    deliver(True)
            if self._outbox.unsent and len(self._outbox.frames) < _FRAMES_IN_FLIGHT:
                self._wake_sender()
        if progress.failing:
            self._fail("audit log writes fail")
        elif self._failure is not None and self._link.writer is not None:
            log.warning("audit log writes again")
            self._failure = None
        self._woken()

    def _fail(self, reason: str) -> None:
        """Answer every waiting caller with failure, and refuse new requests until recovery."""
        if self._failure is None:
            log.error("%s; requests fail until it recovers", reason)
        self._failure = reason
        self._answer_all()

    def _answer_all(self) -> None:
        """Wake every waiting caller; those whose event is unconfirmed get a failure."""
        self._fail_mark = self._outbox.queued
        deferred, self._deferred = self._deferred, collections.deque()
        for _index, deliver in deferred:
            deliver(False)  # confirmed ones were delivered as they were confirmed
        self._outbox.wake_all()
        self._woken()

    # --- closing -----------------------------------------------------------------------------

    async def _close(self) -> None:
        """Send what is queued, have the writer commit it and sign the head, and stop it."""
        self._closing = True
        if self._link.writer is None:
            with contextlib.suppress(Exception):  # one last attempt
                await self._link.start()
        writer = self._link.writer
        if writer is not None:
            if self._outbox.unsent:
                writer.pipe.send(self._outbox.take_frame())
            writer.pipe.send(frame(CLOSE))
            with anyio.move_on_after(_CLOSE_TIMEOUT) as waiting:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(writer.pipe.drain, name="audit-pipe-drain")
                    await self._link.serve(writer)
                    tg.cancel_scope.cancel()
            if waiting.cancelled_caught:
                log.error("the audit writer process did not finish closing in time")
            await writer.stop()
        unwritten = self._outbox.queued - self._done
        self._closed = True
        if unwritten:
            self.lost += unwritten
            log.error("audit log closed with %d events it could not write", unwritten)
        self._answer_all()


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
    """Open the audit log in ``data_dir/audit.sqlite3`` with its writer process, until exit.

    On exit (also when cancelled) everything queued is committed, a final checkpoint covers
    the chain head, and the writer process exits. Works on asyncio and Trio.

    Args:
        data_dir: the data directory (created 0700 if missing).
        signer: the HSM's checkpoint signer (``kms_actors.hsm.checkpoint_signer(root)``).
        durable: True: ``record`` returns after commit; False: right after queueing.
        clock: the service clock (for the read view's housekeeping).
        synchronous: SQLite's ``synchronous`` for the audit file (``FULL`` survives power
            loss; ``NORMAL`` only a process crash).
        checkpoint_every: sign a checkpoint at least every this many records...
        checkpoint_interval: ...and at most this many seconds after a record is committed.
        max_batch: the most events one transaction holds.
        max_backlog: the most events unconfirmed before ``record`` waits for room.
        retry_interval: seconds between attempts while the log cannot be written, and before
            starting the writer process again after it died.

    Raises:
        StoreError: the audit database cannot be opened (``StoreVersionError``: it is newer
            than this code; ``WriterProcessError``: the writer process failed to start).
    """
    if checkpoint_every < 1 or max_batch < 1 or max_backlog < 1:
        raise ValueError("checkpoint_every, max_batch and max_backlog must be at least 1")
    hello = Hello(
        data_dir=str(data_dir),
        synchronous=synchronous,
        checkpoint_every=checkpoint_every,
        checkpoint_interval=checkpoint_interval,
        max_batch=max_batch,
        retry_interval=retry_interval,
        log_level=logging.getLogger("kms_actors").getEffectiveLevel(),
        event_id_prefix="",
        first_number=1,
    )
    # This process opens (and migrates) the database first, so version and permission
    # problems surface here as the store's own errors; the writer then finds it ready.
    async with open_audit_store(
        data_dir, synchronous=synchronous, clock=clock or SystemClock()
    ) as store:
        audit = AuditLog(
            store,
            signer,
            hello,
            durable=durable,
            max_backlog=max_backlog,
            retry_interval=retry_interval,
        )
        await audit._link.start()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(audit._run, name="audit-writer-supervisor")
                tg.start_soon(audit._send_loop, name="audit-sender")
                try:
                    yield audit
                finally:
                    # The sender stops between frames; closing sends the rest itself.
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await audit._close()
