"""The HSM pool: the one place crypto runs, and how each kind of job gets a CPU.

Symmetric jobs (encrypt, decrypt, data keys, random) cost a few microseconds at KMS sizes,
while one hop to a worker thread costs 15-170 us. So by default (``inline_symmetric=True``)
they run directly in the calling task, without yielding. With ``inline_symmetric=False`` they
are queued, and one pool task drains up to ``MAX_BATCH`` queued jobs into ONE worker-thread hop
and then answers each job's caller, so the hop is shared. Material generation and unwrapping
are rarer and heavier and always run on a worker thread. Every thread hop goes through the
pool's own ``CapacityLimiter(workers)``, never anyio's default limiter.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from kms_actors.errors import KMSInternalException
from kms_actors.hsm._blob import blob_material_id, open_blob, seal
from kms_actors.hsm._material import Material, generate_material
from kms_actors.hsm._rootkey import RootKey, unwrap_material, wrap_material

MAX_BATCH = 64

T = TypeVar("T")


class _Job(Generic[T]):
    """One queued symmetric job and its reply; ``run`` happens on a worker thread."""

    __slots__ = ("_done", "_error", "_fn", "_ran", "_value")

    _value: T

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._done = anyio.Event()
        self._ran = False
        self._error: Exception | None = None

    def run(self) -> None:
        try:
            self._value = self._fn()
        except Exception as exc:  # goes back to this job's caller only
            self._error = exc
        self._ran = True

    def finish(self) -> None:
        """Answer the caller: the job's outcome, or KMSInternalException if it never ran."""
        if not self._ran and self._error is None:
            self._error = KMSInternalException()
        self._done.set()

    async def outcome(self) -> T:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


def _run_batch(batch: list[_Job[Any]]) -> None:
    for job in batch:
        job.run()


class HsmPool:
    """Runs crypto recipes on key material; get one from ``open_hsm_pool``.

    In inline mode the symmetric recipes finish without yielding to the scheduler (they cost a
    few microseconds; a checkpoint would cost more). Every method raises
    ``KMSInternalException`` once the pool is closed.
    """

    def __init__(
        self,
        root: RootKey,
        limiter: anyio.CapacityLimiter,
        send: MemoryObjectSendStream[_Job[Any]] | None,
    ) -> None:
        self._root = root
        self._limiter = limiter
        self._send = send  # None: symmetric jobs run inline
        self._closed = False
        self._jobs_inline = 0
        self._jobs_on_threads = 0
        self._thread_hops = 0
        self._batches = 0

    @property
    def inline(self) -> bool:
        """Whether symmetric jobs run inline, in the calling task, without ever yielding."""
        return self._send is None

    async def new_material(self, key_arn: str, version: int) -> tuple[Material, bytes]:
        """Generate fresh 256-bit material; return the handle and the root-wrapped bytes.

        The caller persists ``material.material_id`` and the wrapped bytes.
        """
        return await self._on_thread(functools.partial(self._create, key_arn, version))

    def _create(self, key_arn: str, version: int) -> tuple[Material, bytes]:
        material = generate_material(key_arn, version)
        return material, wrap_material(self._root, material)

    async def unwrap(
        self, key_arn: str, version: int, material_id: bytes, wrapped: bytes
    ) -> Material:
        """Unwrap persisted material for this key ARN, version and material id.

        Raises:
            KMSInternalException: the store is corrupt or the root key is not the one that
                wrapped it (a generic message that reveals nothing more).
        """
        unwrap = functools.partial(
            unwrap_material, self._root, key_arn, version, material_id, wrapped
        )
        return await self._on_thread(unwrap)

    async def encrypt(
        self, material: Material, plaintext: bytes, context: Mapping[str, str] | None
    ) -> bytes:
        """Encrypt ``plaintext`` under ``material`` and ``context``; return a ciphertext blob."""
        if self._send is None:
            self._count_inline()
            return seal(material, plaintext, context)
        return await self._batched(functools.partial(seal, material, plaintext, context))

    async def decrypt(
        self, material: Material, blob: bytes, context: Mapping[str, str] | None
    ) -> bytes:
        """Decrypt a ciphertext blob made under ``material`` and ``context``.

        Raises:
            InvalidCiphertextException: for any integrity failure (one fixed message).
        """
        if self._send is None:
            self._count_inline()
            return open_blob(material, blob, context)
        return await self._batched(functools.partial(open_blob, material, blob, context))

    async def generate_data_key(
        self, material: Material, nbytes: int, context: Mapping[str, str] | None
    ) -> tuple[bytes, bytes]:
        """Return a fresh ``nbytes`` data key and its ciphertext blob under ``material``."""
        if nbytes < 1:
            raise ValueError("a data key must be at least one byte")
        if self._send is None:
            self._count_inline()
            return _data_key(material, nbytes, context)
        return await self._batched(functools.partial(_data_key, material, nbytes, context))

    async def random(self, nbytes: int) -> bytes:
        """Return ``nbytes`` bytes from the operating system's CSPRNG."""
        if nbytes < 0:
            raise ValueError("nbytes must not be negative")
        if self._send is None:
            self._count_inline()
            return os.urandom(nbytes)
        return await self._batched(functools.partial(os.urandom, nbytes))

    # The same sync header parse as the module-level function, for callers holding a pool.
    blob_material_id = staticmethod(blob_material_id)

    def stats(self) -> dict[str, int]:
        """Return counters: jobs run inline, jobs run on threads, thread hops, batches."""
        return {
            "jobs_inline": self._jobs_inline,
            "jobs_on_threads": self._jobs_on_threads,
            "thread_hops": self._thread_hops,
            "batches": self._batches,
        }

    def _count_inline(self) -> None:
        if self._closed:
            raise KMSInternalException()
        self._jobs_inline += 1

    async def _on_thread(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise KMSInternalException()
        self._thread_hops += 1
        self._jobs_on_threads += 1
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    async def _batched(self, fn: Callable[[], T]) -> T:
        assert self._send is not None
        job = _Job(fn)
        try:
            self._send.send_nowait(job)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise KMSInternalException() from None
        return await job.outcome()

    async def _drain(
        self,
        receive: MemoryObjectReceiveStream[_Job[Any]],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run queued jobs, one thread hop per batch, until cancelled; then fail the rest."""
        with receive:
            task_status.started()
            try:
                async for first in receive:
                    batch = [first]
                    while len(batch) < MAX_BATCH:
                        try:
                            batch.append(receive.receive_nowait())
                        except anyio.WouldBlock:
                            break
                    await self._hop(batch)
            finally:
                self._closed = True
                _fail_queued(receive)

    async def _hop(self, batch: list[_Job[Any]]) -> None:
        self._batches += 1
        self._thread_hops += 1
        self._jobs_on_threads += len(batch)
        try:
            # Not abandoned on cancel: the hop returns only once the thread is done, so a job
            # is answered with its real outcome, or with an error if it never started.
            await anyio.to_thread.run_sync(_run_batch, batch, limiter=self._limiter)
        finally:
            for job in batch:
                job.finish()

    def _close(self) -> None:
        self._closed = True
        if self._send is not None:
            self._send.close()


def _data_key(
    material: Material, nbytes: int, context: Mapping[str, str] | None
) -> tuple[bytes, bytes]:
    key = os.urandom(nbytes)
    return key, seal(material, key, context)


def _fail_queued(receive: MemoryObjectReceiveStream[_Job[Any]]) -> None:
    while True:
        try:
            job = receive.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return
        job.finish()


@contextlib.asynccontextmanager
async def open_hsm_pool(
    root: RootKey, *, workers: int = 2, inline_symmetric: bool = True
) -> AsyncIterator[HsmPool]:
    """Open the HSM pool; on exit, answer every queued job with KMSInternalException.

    Args:
        root: the root key that wraps all key material at rest.
        workers: the most worker threads the pool uses at once (its own CapacityLimiter).
        inline_symmetric: run symmetric jobs in the calling task (True, the fast default)
            or batch them onto worker threads, one hop per drained batch (False).
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    limiter = anyio.CapacityLimiter(workers)
    error: Exception | None = None
    async with anyio.create_task_group() as tg:
        if inline_symmetric:
            pool = HsmPool(root, limiter, None)
        else:
            send, receive = anyio.create_memory_object_stream[_Job[Any]](math.inf)
            pool = HsmPool(root, limiter, send)
            await tg.start(pool._drain, receive)
        try:
            yield pool
        except Exception as exc:
            # Re-raised below, outside the task group, so the caller sees its own exception
            # rather than an ExceptionGroup around it.
            error = exc
        finally:
            pool._close()
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
