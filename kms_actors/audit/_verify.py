"""Checking the chain (``verify_chain``) and cutting old events off it (``export_and_prune``).

``verify_chain`` walks every record from the start of the chain (record 1, or the record after
the prune anchor) and stops at the first problem, naming its seq:

- ``missing``: a seq is absent (records deleted), or a checkpoint names a record past the
  end of the chain (the tail was cut);
- ``reordered``: a record's ``prev_hash`` is not its predecessor's hash (a record before it
  was deleted and the rest renumbered, or records were swapped or replaced);
- ``edited``: a record's bytes do not hash to its ``hash`` (the event was changed);
- ``columns``: the queryable columns disagree with the hashed event (an index was doctored);
- ``checkpoint``: a checkpoint's signature is forged, or its hash is not the chain's (the
  chain was rewritten and rehashed);
- ``anchor``: the prune anchor's signature is forged.

What it cannot see: records after the newest checkpoint that were rewritten and rehashed, or
removed together with any checkpoint vouching for them (the writer signs a checkpoint at
least every ``checkpoint_interval`` seconds and when it closes; keep ``last_checkpoint_seq``
of a report elsewhere if that window matters); and the lookup index (``audit_index`` and
``audit_batches``), which is not checked: a doctored entry there can hide an event from
lookups by key, event id or time, never from this walk.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from typing import Literal

import anyio
import anyio.to_thread
import msgspec

from kms_actors.audit._chain import chain_hash, checkpoint_valid, columns_match, sign_checkpoint
from kms_actors.domain.clock import Clock, SystemClock
from kms_actors.hsm import CheckpointSigner
from kms_actors.store import GENESIS_HASH, AuditRecord, AuditStore, Checkpoint

ProblemKind = Literal["missing", "reordered", "edited", "columns", "checkpoint", "anchor"]

_EXPORT_CHUNK = 1000


class VerifyProblem(msgspec.Struct, frozen=True, kw_only=True):
    """The first thing wrong with the chain: where (``seq``), what kind, and in words."""

    seq: int
    kind: ProblemKind
    detail: str


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of ``verify_chain``; ``ok`` is False exactly when ``problem`` is set."""

    ok: bool
    records: int  # records checked
    first_seq: int | None
    last_seq: int | None
    checkpoints: int  # checkpoints checked
    last_checkpoint_seq: int | None
    anchor_seq: int | None
    problem: VerifyProblem | None = None

    def summary(self) -> str:
        """Return one line for humans, e.g. for ``kms-actors audit verify``."""
        if self.problem is not None:
            return f"BROKEN at record {self.problem.seq}: {self.problem.detail}"
        if self.first_seq is None:
            return f"OK: no records ({self.checkpoints} checkpoints)"
        return (
            f"OK: records {self.first_seq}..{self.last_seq} ({self.records}), "
            f"{self.checkpoints} checkpoints, last checkpoint at {self.last_checkpoint_seq}"
        )


class ChainBroken(Exception):
    """The chain does not verify, so it is not pruned; ``report`` says where it breaks."""

    def __init__(self, report: VerifyReport) -> None:
        super().__init__(report.summary())
        self.report = report


def _check_record(record: AuditRecord, seq: int, prev: bytes) -> VerifyProblem | None:
    if record.seq != seq:
        detail = f"records {seq}..{record.seq - 1} are missing (deleted)"
        return VerifyProblem(seq=seq, kind="missing", detail=detail)
    if record.prev_hash != prev:
        detail = (
            f"record {seq} does not follow record {seq - 1} (prev_hash mismatch): records "
            "were deleted, replaced or reordered"
        )
        return VerifyProblem(seq=seq, kind="reordered", detail=detail)
    if chain_hash(prev, record.event_json) != record.hash:
        detail = f"record {seq} does not match its hash: the event was edited"
        return VerifyProblem(seq=seq, kind="edited", detail=detail)
    if not columns_match(record):
        detail = f"record {seq}'s query columns do not match its event"
        return VerifyProblem(seq=seq, kind="columns", detail=detail)
    return None


def _check_checkpoint(
    checkpoint: Checkpoint, record_hash: bytes, signer: CheckpointSigner
) -> VerifyProblem | None:
    seq = checkpoint.seq
    if not checkpoint_valid(signer, checkpoint):
        detail = f"the checkpoint at record {seq} has an invalid signature"
        return VerifyProblem(seq=seq, kind="checkpoint", detail=detail)
    if checkpoint.hash != record_hash:
        detail = f"the checkpoint at record {seq} does not match the chain: it was rewritten"
        return VerifyProblem(seq=seq, kind="checkpoint", detail=detail)
    return None


async def verify_chain(store: AuditStore, signer: CheckpointSigner) -> VerifyReport:
    """Walk the whole chain and its checkpoints; report the first problem, if any."""
    anchor = await store.anchor()
    first: int | None = None
    records = checked = 0
    last_checkpoint: int | None = None

    def report(problem: VerifyProblem | None = None) -> VerifyReport:
        return VerifyReport(
            ok=problem is None,
            records=records,
            first_seq=first,
            last_seq=first + records - 1 if first is not None else None,
            checkpoints=checked,
            last_checkpoint_seq=last_checkpoint,
            anchor_seq=anchor.seq if anchor is not None else None,
            problem=problem,
        )

    if anchor is not None and not checkpoint_valid(signer, anchor):
        detail = f"the prune anchor at record {anchor.seq} has an invalid signature"
        return report(VerifyProblem(seq=anchor.seq, kind="anchor", detail=detail))
    seq, prev = (anchor.seq + 1, anchor.hash) if anchor is not None else (1, GENESIS_HASH)
    checkpoints = {cp.seq: cp for cp in await store.checkpoints(seq)}
    async with contextlib.aclosing(store.iterate(seq)) as stored:
        async for record in stored:
            problem = _check_record(record, seq, prev)
            checkpoint = checkpoints.pop(seq, None)
            if problem is None and checkpoint is not None:
                problem = _check_checkpoint(checkpoint, record.hash, signer)
                if problem is None:
                    checked += 1
                    last_checkpoint = seq
            if problem is not None:
                return report(problem)
            first = seq if first is None else first
            records += 1
            seq, prev = seq + 1, record.hash
    if checkpoints:
        beyond = min(checkpoints)
        detail = f"a checkpoint vouches for record {beyond}, but the chain ends at {seq - 1}"
        return report(VerifyProblem(seq=seq, kind="missing", detail=detail))
    return report()


def _publish(tmp: pathlib.Path, path: pathlib.Path) -> None:
    """Give the synced temporary file its final name, never replacing an existing file."""
    try:
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _export(store: AuditStore, first: int, last: int, path: pathlib.Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    async with await anyio.open_file(tmp, "xb") as out:
        chunk: list[bytes] = []
        async with contextlib.aclosing(store.iterate(first)) as records:
            async for record in records:
                if record.seq > last:
                    break
                chunk.append(record.event_json + b"\n")
                if len(chunk) >= _EXPORT_CHUNK:
                    await out.write(b"".join(chunk))
                    chunk.clear()
        await out.write(b"".join(chunk))
        await out.flush()
        await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())
    await anyio.to_thread.run_sync(_publish, tmp, path)


async def export_and_prune(
    store: AuditStore,
    signer: CheckpointSigner,
    before_time: float,
    path: pathlib.Path,
    *,
    clock: Clock | None = None,
) -> tuple[int, Checkpoint | None]:
    """Export the events older than ``before_time`` to ``path`` (JSON Lines), then prune them.

    The chain is verified first and left alone if it is broken. The export holds the stored
    event bytes, one per line, in chain order; it is synced and given its name before anything
    is deleted, and never overwrites a file. Pruning keeps a signed anchor (the last pruned
    record's seq and hash), so ``verify_chain`` still verifies the rest, and the export can be
    checked against it: chaining SHA-256 over its lines from the previous anchor's hash (32
    zero bytes for the first export) ends at the new anchor's hash.

    Returns:
        ``(records pruned, anchor)``; ``(0, current anchor)`` when nothing is old enough (no
        file is written then).

    Raises:
        ChainBroken: the chain does not verify.
        FileExistsError: ``path`` exists.
    """
    report = await verify_chain(store, signer)
    if not report.ok:
        raise ChainBroken(report)
    if await anyio.Path(path).exists():
        raise FileExistsError(f"{path} exists; an export never overwrites a file")
    anchor = await store.anchor()
    first = anchor.seq + 1 if anchor is not None else 1
    last = await store.cut_seq(before_time)
    if last < first:
        return 0, anchor
    await _export(store, first, last, path)
    record = await store.get(last)
    assert record is not None, "a verified chain has every record up to its head"
    created = (clock or SystemClock()).now()
    new_anchor = sign_checkpoint(signer, last, record.hash, created)
    count = await store.prune(new_anchor, tracking_start=before_time)
    return count, new_anchor
