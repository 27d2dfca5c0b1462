"""Running the load in this process, or in ``--workers N`` spawned processes sharing it.

Each worker process runs its own event loop (uvloop when installed) and its own HTTP session.
They report ready, start together at a wall-clock time the parent picks, stream one tally per
second for the progress line, and send their result at the end, all over one queue.
Workers ignore SIGINT: the parent handles Ctrl-C and tells them to stop through an event.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import signal
import time
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Any

import anyio
import msgspec

from kms_actors.loadtest._load import Load, Share, now
from kms_actors.loadtest._model import SecondData, WorkerResult
from kms_actors.loadtest._options import Options
from kms_actors.loadtest._progress import Progress
from kms_actors.loadtest._target import Credentials, Sender, open_http_target

_READY_TIMEOUT = 60.0  # seconds a worker may take to start (imports, session)
_START_MARGIN = 0.05  # seconds between the start signal and the common start time
_POLL = 0.02


class RunFailed(Exception):
    """The run could not complete (a worker died): the message is one line for stderr."""


class WorkerJob(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker process needs, sent to it as msgpack."""

    options: Options
    credentials: Credentials
    requests: list[tuple[str, dict[str, Any]]]
    share: Share


def event_loop_options() -> dict[str, Any]:
    """Return anyio.run's backend options: uvloop when it is installed."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}


def connections_for(options: Options) -> int:
    """Return how many connections one worker's HTTP session may open."""
    if options.concurrency is not None:
        return max(1, -(-options.concurrency // options.workers))
    return max(1, options.max_in_flight // options.workers)


class Stopper:
    """Collects what to do when the run must stop early (Ctrl-C, SIGTERM)."""

    def __init__(self) -> None:
        self.requested = False
        self.measuring = False
        self._actions: list[Callable[[], None]] = []

    def on_stop(self, action: Callable[[], None]) -> None:
        """Call ``action`` when a stop is requested (now, if one already was)."""
        self._actions.append(action)
        if self.requested:
            action()

    def stop(self) -> None:
        """Request a stop: the load ends, requests in flight are counted, clean-up runs."""
        self.requested = True
        for action in self._actions:
            action()


async def run_in_process(
    sender: Sender, share: Share, progress: Progress, stopper: Stopper
) -> WorkerResult:
    """Run the whole load as one worker in this process and event loop."""
    load = Load(share, sender, on_second=lambda data: progress.second(0, data))
    stopper.on_stop(load.stop)
    progress.started()
    return await load.run(now())


def worker_main(
    job: bytes, results: Queue[Any], go: Event, stop: Event, start_at: Synchronized[float]
) -> None:
    """Run one worker process (the spawn target): measure, then put the result on the queue."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    decoded = msgspec.msgpack.decode(job, type=WorkerJob)
    index = decoded.share.index
    try:
        result = anyio.run(
            _worker, decoded, results, go, stop, start_at, backend_options=event_loop_options()
        )
    except Exception as error:  # reported to the parent as one line
        results.put(("failed", index, f"{type(error).__name__}: {error}"))
    else:
        results.put(("done", index, msgspec.msgpack.encode(result)))


async def _worker(
    job: WorkerJob, results: Queue[Any], go: Event, stop: Event, start_at: Synchronized[float]
) -> WorkerResult:
    index = job.share.index
    async with open_http_target(
        job.options, job.credentials, connections_for(job.options)
    ) as target:
        sender = target.sender(job.requests)
        results.put(("ready", index, b""))
        # A multiprocessing event cannot be awaited: wait for it on a thread.
        if not await anyio.to_thread.run_sync(go.wait, _READY_TIMEOUT, abandon_on_cancel=True):
            raise TimeoutError(f"no start signal within {_READY_TIMEOUT:g}s")
        start = now() + (start_at.value - time.time())

        def second(data: SecondData) -> None:
            results.put(("second", index, msgspec.msgpack.encode(data)))

        load = Load(job.share, sender, on_second=second, should_stop=stop.is_set)
        return await load.run(start)


async def run_processes(
    jobs: list[WorkerJob], progress: Progress, stopper: Stopper
) -> list[WorkerResult]:
    """Run each job in a spawned process and return their results.

    Raises:
        RunFailed: A worker failed or died before sending its result.
    """
    context = multiprocessing.get_context("spawn")
    results: Queue[Any] = context.Queue()
    go, stop = context.Event(), context.Event()
    start_at: Synchronized[float] = context.Value("d", 0.0)
    processes = [
        context.Process(
            target=worker_main,
            args=(msgspec.msgpack.encode(job), results, go, stop, start_at),
            name=f"kms-actors-loadtest-{job.share.index}",
            daemon=True,
        )
        for job in jobs
    ]
    stopper.on_stop(stop.set)
    try:
        for process in processes:
            process.start()
        return await _collect(results, processes, go, start_at, progress)
    finally:
        stop.set()
        for process in processes:
            if process.pid is not None:
                await anyio.to_thread.run_sync(process.join, 5.0, abandon_on_cancel=True)
                if process.is_alive():
                    process.terminate()
        results.close()


async def _collect(
    results: Queue[Any],
    processes: list[Any],
    go: Event,
    start_at: Synchronized[float],
    progress: Progress,
) -> list[WorkerResult]:
    ready: set[int] = set()
    done: dict[int, WorkerResult] = {}
    dead_seen: set[int] = set()
    deadline = time.monotonic() + _READY_TIMEOUT
    while len(done) < len(processes):
        while True:
            try:
                kind, index, data = results.get_nowait()
            except queue_module.Empty:
                break
            if kind == "ready":
                ready.add(index)
            elif kind == "second":
                progress.second(index, msgspec.msgpack.decode(data, type=SecondData))
            elif kind == "done":
                done[index] = msgspec.msgpack.decode(data, type=WorkerResult)
            else:
                raise RunFailed(f"worker {index} failed: {data}")
        if not go.is_set():
            if len(ready) == len(processes):
                start_at.value = time.time() + _START_MARGIN
                go.set()
                progress.started()
            elif time.monotonic() > deadline:
                raise RunFailed(f"workers did not start within {_READY_TIMEOUT:g}s")
        for index, process in enumerate(processes):
            if index not in done and process.exitcode is not None:
                if index in dead_seen:  # gone for a whole poll with nothing left in the queue
                    raise RunFailed(f"worker {index} exited with code {process.exitcode}")
                dead_seen.add(index)
        await anyio.sleep(_POLL)
    return [done[index] for index in sorted(done)]
