"""The writer's view of the chain: where it ends, and when the next checkpoint is due.

``ChainHead.rows(batch)`` places a batch of composed events after the head (``seq``,
``prev_hash``, ``hash``: the rule in ``_chain``) as the rows ``AuditStore.append_rows`` takes;
``checkpoint_for`` says whether the batch's transaction must also carry a signed checkpoint
(and what it must vouch for: the writer has it signed); ``committed`` moves the head once the
store has the batch.
"""

from __future__ import annotations

import hashlib

from kms_actors.audit._compose import Composed
from kms_actors.domain.clock import Clock
from kms_actors.store import GENESIS_HASH, Checkpoint

Row = tuple[object, ...]  # a record as ``AuditStore.append_rows`` takes it
Unsigned = tuple[int, bytes, float]  # what a checkpoint vouches for: seq, hash, created

_sha256 = hashlib.sha256


class ChainHead:
    """The chain's last ``(seq, hash)`` and the records no checkpoint covers yet.

    ``unsigned_since`` is when the oldest of those was committed (None if there are none);
    set ``checkpoint_due`` to have the next batch (even an empty one) carry a checkpoint.
    """

    def __init__(self, clock: Clock, checkpoint_every: int) -> None:
        self._clock = clock
        self._checkpoint_every = checkpoint_every
        self.head = (0, GENESIS_HASH)
        self.unsigned = 0
        self.unsigned_since: float | None = None
        self.checkpoint_due = False

    def load(self, head: tuple[int, bytes] | None, signed_seq: int) -> None:
        """Start from the stored head, the newest signed record being ``signed_seq``."""
        self.head = head if head is not None else (0, GENESIS_HASH)
        self.unsigned = self.head[0] - signed_seq
        if self.unsigned > 0:
            self.unsigned_since = self._clock.now()

    def rows(self, batch: list[Composed]) -> tuple[list[Row], tuple[int, bytes]]:
        """Return the batch as rows following the head, and the head after them."""
        seq, prev = self.head
        prev_blob = bytearray(prev)  # blobs go to sqlite3 as bytearrays: see ``Composed``
        rows: list[Row] = []
        for event_json, columns, names in batch:
            seq += 1
            prev = _sha256(prev + event_json).digest()
            blob = bytearray(prev)
            rows.append((seq, *columns, prev_blob, blob, names))
            prev_blob = blob
        return rows, (seq, prev)

    def checkpoint_for(self, head: tuple[int, bytes], count: int, *, last: bool) -> Unsigned | None:
        """Return what the checkpoint of a batch of ``count`` records ending at ``head``
        vouches for, or None when the batch needs no checkpoint.

        One is due every ``checkpoint_every`` records, when ``checkpoint_due`` is set, and
        with the ``last`` batch before the log closes, as long as some record is unsigned.
        """
        unsigned = self.unsigned + count
        wanted = unsigned >= self._checkpoint_every or self.checkpoint_due or last
        if not wanted or unsigned == 0:
            self.checkpoint_due = self.checkpoint_due and unsigned > 0
            return None
        return head[0], head[1], self._clock.now()

    def committed(self, count: int, head: tuple[int, bytes], checkpoint: Checkpoint | None) -> bool:
        """Move past a stored batch; return True if records now wait for a checkpoint."""
        if count:
            self.head = head
        if checkpoint is not None:
            self.unsigned, self.unsigned_since, self.checkpoint_due = 0, None, False
            return False
        if not count:
            return False
        self.unsigned += count
        if self.unsigned_since is not None:
            return False
        self.unsigned_since = self._clock.now()
        return True
