"""The audit writer process: ``python -m kms_actors.audit._writer_process``.

The service (``AuditLog``) starts it and talks to it over its stdin and stdout (``_pipe``).
It runs the ``AuditWriter`` (group commit, hash chain, checkpoints, retries) on the events the
service sends, and reports after every write attempt how far it got, so that the service can
answer each request once its event is committed. Building each event's JSON, hashing the chain
and SQLite all happen here, on the other core, instead of on the service's event loop.

It never holds a key: a checkpoint is signed by the service on request (``SIGN``). It ignores
SIGINT (a Ctrl-C meant for the service must not cut the log short: the service closes it), and
when its input ends without ``CLOSE`` (the service died) it commits what it was sent and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import signal
import sys

import anyio
import msgspec

from kms_actors.audit._pipe import (
    BROKEN,
    CLOSE,
    CLOSED,
    EVENTS,
    HELLO,
    PROGRESS,
    READY,
    REPLAY,
    SIGN,
    SIGNED,
    Broken,
    FramePipe,
    Hello,
    Item,
    Progress,
    Ready,
    ReadyEvent,
    Signed,
    SignRequest,
    decode_items,
    frame,
)
from kms_actors.audit._writer import AuditWriter, open_audit_writer
from kms_actors.domain.identifiers import sequence_id
from kms_actors.store import AuditFilter

log = logging.getLogger("kms_actors.audit.writer")


class _Signer:
    """Checkpoint signatures, asked of the service (which holds the HSM's key)."""

    def __init__(self, pipe: FramePipe) -> None:
        self._pipe = pipe
        self._next = 0
        self._waiting: dict[int, tuple[anyio.Event, list[bytes | None]]] = {}
        self.gone = False

    async def sign(self, message: bytes) -> bytes | None:
        if self.gone:
            return None
        number = self._next
        self._next += 1
        slot: tuple[anyio.Event, list[bytes | None]] = (anyio.Event(), [None])
        self._waiting[number] = slot
        try:
            self._pipe.send(frame(SIGN, SignRequest(number, message)))
            if self._pipe.broken:
                self.service_gone()
            await slot[0].wait()
        finally:
            del self._waiting[number]
        return slot[1][0]

    def answer(self, signed: Signed) -> None:
        slot = self._waiting.get(signed.number)
        if slot is not None:
            slot[1][0] = signed.signature
            slot[0].set()

    def service_gone(self) -> None:
        self.gone = True
        for event, _ in self._waiting.values():
            event.set()


class _Link:
    """What the writer process tracks: positions of the events sent, and the close."""

    def __init__(self, pipe: FramePipe, writer: AuditWriter, signer: _Signer, hello: Hello) -> None:
        self.pipe = pipe
        self.id_prefix = hello.event_id_prefix
        self.first_number = hello.first_number
        self.writer = writer
        self.signer = signer
        self.received = 0
        self.skipped = 0  # replayed events found already stored: positions 0 .. skipped - 1
        self.bad: list[int] = []  # positions of events that could not be built
        self.checking = True  # replayed events are still being looked up
        self.closing = anyio.Event()
        self.told: Progress | None = None

    def progress(self) -> Progress:
        writer = self.writer
        done = self.skipped + writer.written
        for position in self.bad:  # ascending: each one not queued shifts the rest
            if position > done:
                break
            done += 1
        return Progress(
            done=done,
            bad=tuple(self.bad),
            failing=not writer.healthy and not self.closing.is_set(),
            batches=writer.batches,
            committed=writer.committed,
            checkpoints=writer.checkpoints,
            lost=writer.lost,
        )

    def event_id(self, item: Item, position: int) -> str:
        if isinstance(item, ReadyEvent):
            return item.event.event_id
        return item.event_id or sequence_id(self.id_prefix, self.first_number + position)

    def accept(self, item: Item) -> None:
        position = self.received
        self.received += 1
        self.checking = False
        if isinstance(item, ReadyEvent):
            accepted = self.writer.accept(item.event)
        else:
            accepted = self.writer.accept(item, self.event_id(item, position))
        if not accepted:
            self.bad.append(position)
            self.report()

    async def replay(self, item: Item) -> None:
        if self.checking and self.received == self.skipped:
            event_id = self.event_id(item, self.received)
            stored = await self.writer.store.query(AuditFilter(event_id=event_id), limit=1)
            if stored:
                self.received += 1
                self.skipped += 1
                return
        self.accept(item)

    async def read(self) -> None:
        """Take frames from the service until its input ends."""
        while True:
            frames = await self.pipe.frames()
            if frames is None:
                self.signer.service_gone()
                self.closing.set()
                return
            for kind, body in frames:
                if kind == EVENTS:
                    for item in decode_items(body):
                        self.accept(item)
                elif kind == REPLAY:
                    for item in decode_items(body):
                        await self.replay(item)
                    self.report()  # events found already stored are done without a write
                elif kind == SIGNED:
                    self.signer.answer(msgspec.msgpack.decode(body, type=Signed))
                elif kind == CLOSE:
                    self.closing.set()
                else:
                    raise ValueError(f"unexpected audit pipe frame kind {kind}")

    def report(self) -> None:
        """Tell the service how far the writer got (after each write attempt), if it moved."""
        progress = self.progress()
        if progress != self.told:
            self.pipe.send(frame(PROGRESS, progress))
            self.told = progress


async def _serve(pipe: FramePipe) -> None:
    first = await pipe.frames()
    if not first or first[0][0] != HELLO:
        raise ValueError("the audit writer expects HELLO first")
    hello = msgspec.msgpack.decode(first[0][1], type=Hello)
    logging.basicConfig(
        level=hello.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s audit-writer[%(process)d] %(name)s: %(message)s",
    )
    signer = _Signer(pipe)
    async with contextlib.AsyncExitStack() as stack:
        # The reader outlives the writer: closing the writer signs the final checkpoint,
        # which takes the service's answer. Exits run in reverse: writer, cancel, readers.
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        tg.start_soon(pipe.drain, name="audit-pipe-drain")
        link: _Link | None = None

        async def closed() -> None:
            if link is None:
                return
            link.writer.on_progress = None
            pipe.send(frame(CLOSED, link.progress()))
            with anyio.move_on_after(30):
                await pipe.flushed()
            if pipe.broken:
                log.warning("the service was gone before the audit log closed")

        stack.push_async_callback(closed)
        try:
            writer = await stack.enter_async_context(
                open_audit_writer(
                    pathlib.Path(hello.data_dir),
                    signer.sign,
                    durable=False,
                    synchronous="NORMAL" if hello.synchronous == "NORMAL" else "FULL",
                    checkpoint_every=hello.checkpoint_every,
                    checkpoint_interval=hello.checkpoint_interval,
                    max_batch=hello.max_batch,
                    retry_interval=hello.retry_interval,
                    inline=True,
                )
            )
        except Exception as exc:
            log.exception("the audit log could not be opened")
            pipe.send(frame(BROKEN, Broken(error=type(exc).__name__, message=str(exc))))
            with anyio.move_on_after(30):
                await pipe.flushed()
            return
        link = _Link(pipe, writer, signer, hello)
        pipe.send(frame(READY, Ready(seq=writer.head_seq)))
        writer.on_progress = link.report
        tg.start_soon(link.read, name="audit-pipe-reader")
        await link.closing.wait()
        # Leaving this block closes the writer: it commits what is queued and has the final
        # checkpoint signed (the reader and the drain stay up for that), then says CLOSED.


def main() -> None:
    """Run the writer on this process's stdin and stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Keep the pipe to ourselves: stray reads get /dev/null, stray prints go to stderr.
    fd_in, fd_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    options = {"use_uvloop": True} if sys.platform == "linux" else {}
    with contextlib.suppress(BrokenPipeError):  # the service is gone; what could be, is written
        anyio.run(_serve, FramePipe(fd_in, fd_out), backend_options=options)


if __name__ == "__main__":
    main()
