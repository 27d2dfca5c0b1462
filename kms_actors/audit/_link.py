"""The service's end of its audit writer process: starting it, its reports, its totals.

``WriterLink.start`` starts a writer process (``_process``) numbering its events from the
oldest event the outbox holds unconfirmed, and sends it the unconfirmed frames again, so a
process started after another died takes over where that one stopped (the events already
stored are recognised by event id and not stored twice). ``serve`` hands the writer's progress
reports to the log and signs the checkpoints it asks for: the checkpoint key never leaves the
service. ``AuditLog`` (``_log``) decides when to start one and what the reports mean.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import msgspec

from kms_actors.audit._outbox import Outbox
from kms_actors.audit._pipe import (
    CLOSED,
    PROGRESS,
    SIGN,
    SIGNED,
    Hello,
    Progress,
    Signed,
    SignRequest,
    frame,
)
from kms_actors.audit._process import WriterProcess, start_writer
from kms_actors.domain.identifiers import UuidSequence
from kms_actors.hsm import CheckpointSigner

log = logging.getLogger("kms_actors.audit")

# Called with each progress report and the event number of the reporting process's position 0.
OnProgress = Callable[[Progress, int], None]


class WriterLink:
    """The current writer process (``writer``, None while there is none) and the totals.

    ``connected`` is set while a writer process takes frames. ``committed``, ``batches`` and
    ``checkpoints`` add up what every writer process reported.
    """

    def __init__(
        self,
        hello: Hello,
        signer: CheckpointSigner,
        outbox: Outbox,
        on_progress: OnProgress,
    ) -> None:
        self._hello = hello
        self._signer = signer
        self._outbox = outbox
        self._on_progress = on_progress
        self._ids = UuidSequence()  # only its prefix: event ``i`` is its (i + 1)-th id
        self.writer: WriterProcess | None = None
        self.connected = anyio.Event()
        self._base = 0  # the event number of the current writer process's position 0
        self._totals = Progress(done=0)  # of the writer processes before the current one
        self._current = Progress(done=0)

    @property
    def pid(self) -> int | None:
        """The writer process's id (None while it is not running)."""
        return self.writer.process.pid if self.writer is not None else None

    @property
    def committed(self) -> int:
        """How many records the writer processes committed."""
        return self._totals.committed + self._current.committed

    @property
    def batches(self) -> int:
        """How many transactions the writer processes committed records in."""
        return self._totals.batches + self._current.batches

    @property
    def checkpoints(self) -> int:
        """How many signed checkpoints the writer processes stored."""
        return self._totals.checkpoints + self._current.checkpoints

    async def start(self) -> None:
        """Start a writer process, wait until it is ready, replay what it must take over.

        Raises:
            WriterProcessError: the process could not open the audit log.
        """
        # The new process numbers from the oldest event not confirmed by its predecessor.
        base = self._outbox.oldest_unconfirmed
        hello = msgspec.structs.replace(
            self._hello, event_id_prefix=self._ids.prefix, first_number=base + 1
        )
        writer = await start_writer(hello)
        self.writer = writer
        self._base = base
        for data in self._outbox.replay():
            writer.pipe.send(data)
        self.connected.set()

    async def serve(self, writer: WriterProcess) -> None:
        """Take the writer's reports and signing requests until its output ends."""

        def handle(kind: int, body: memoryview) -> None:
            if kind in (PROGRESS, CLOSED):
                self._current = msgspec.msgpack.decode(body, type=Progress)
                self._on_progress(self._current, self._base)
            elif kind == SIGN:
                request = msgspec.msgpack.decode(body, type=SignRequest)
                signature = self._signer.sign(request.message)
                writer.pipe.send(frame(SIGNED, Signed(request.number, signature)))
            else:
                log.error("audit writer sent an unexpected frame (kind %d)", kind)

        await writer.serve(handle)

    def lost(self) -> None:
        """Forget the current writer process (it has exited), keeping what it reported."""
        self.connected = anyio.Event()
        self.writer = None
        self._totals = Progress(
            done=0,
            batches=self.batches,
            committed=self.committed,
            checkpoints=self.checkpoints,
            lost=self._totals.lost + self._current.lost,
        )
        self._current = Progress(done=0)
