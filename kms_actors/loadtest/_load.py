"""The load loops of one worker: closed loop (N users) and open loop (fixed arrival rate).

Open loop measures each request from its *intended* send time ``start + k / rate``, so when
the endpoint (or this generator) falls behind, the queueing shows up in the latencies instead
of silently lowering the offered rate (no coordinated omission). How late each send actually
started is recorded apart: it is how the report tells that the generator itself was saturated.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import time
from collections.abc import Callable

import anyio
import anyio.lowlevel
import msgspec

from kms_actors.loadtest._histogram import Histogram
from kms_actors.loadtest._model import LATE_THRESHOLD_MS, SecondData, Tally, WorkerResult
from kms_actors.loadtest._options import Options
from kms_actors.loadtest._target import Sender

now = time.perf_counter
_TICK = 0.1  # seconds between checks for finished seconds and stop requests
_YIELD_EVERY = 16  # a closed-loop user yields at least this often, even if sends never wait


class Share(msgspec.Struct, frozen=True, kw_only=True):
    """One worker's part of the load."""

    index: int
    mix: dict[str, int]
    slots: dict[str, list[int]]
    concurrency: int | None
    rate: float | None
    offset: float  # open loop: this worker's first intended send, after the common start
    duration: float | None
    requests: int | None
    warmup: float
    max_in_flight: int


def share_of(options: Options, index: int, slots: dict[str, list[int]]) -> Share:
    """Return worker ``index``'s part of the load described by ``options``."""
    workers = options.workers

    def part(total: int) -> int:
        return total // workers + (index < total % workers)

    rate = options.rate / workers if options.rate is not None else None
    return Share(
        index=index,
        mix=options.mix,
        slots=slots,
        concurrency=part(options.concurrency) if options.concurrency is not None else None,
        rate=rate,
        offset=index / options.rate if options.rate is not None else 0.0,
        duration=options.duration,
        requests=part(options.requests) if options.requests is not None else None,
        warmup=options.warmup,
        max_in_flight=max(1, options.max_in_flight // workers),
    )


class Load:
    """Runs one worker's share against a sender and records what happened."""

    def __init__(
        self,
        share: Share,
        sender: Sender,
        *,
        on_second: Callable[[SecondData], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self._share = share
        self._send = sender.send
        self._on_second = on_second
        self._should_stop = should_stop
        self._ops = list(share.mix)
        self._cumulative = list(itertools.accumulate(share.mix.values()))
        # Not for security: a fast generator of which operation and key to use next.
        self._rng = random.Random(share.index * 7919 + time.time_ns())  # noqa: S311
        self._tallies = {op: Tally() for op in share.mix}
        self._seconds: dict[int, Tally] = {}
        self._emitted = 0
        self._lag = Histogram()
        self._late = 0
        self._in_flight_waits = 0
        self._warmup_requests = 0
        self._budget = share.requests
        self._scheduler = anyio.CancelScope()
        self._stopped = False
        self.measure_start = self.end = self.last_done = 0.0

    def stop(self) -> None:
        """Send nothing more; requests in flight finish and are counted."""
        self._stopped = True
        self.end = min(self.end, now())
        self._scheduler.cancel()

    async def run(self, start: float) -> WorkerResult:
        """Run from ``start`` (a ``perf_counter`` time) until the share is done or stopped."""
        share = self._share
        self.measure_start = self.last_done = start + share.warmup
        self.end = self.measure_start + share.duration if share.duration is not None else math.inf
        if self._stopped:  # stopped before it started
            self.end = start
        delay = start - now()
        if delay > 0:
            await anyio.sleep(delay)
        cpu, wall = time.process_time(), now()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._ticker)
            if share.rate is not None:
                await self._open_loop(start, share.rate)
            else:
                await self._closed_loop(share.concurrency or 1)
            tg.cancel_scope.cancel()
        cpu, wall = time.process_time() - cpu, now() - wall
        last = max(self._seconds, default=-1)
        return WorkerResult(
            index=share.index,
            operations={op: tally.to_data() for op, tally in self._tallies.items()},
            timeline=[
                SecondData(second=s, tally=self._seconds.get(s, Tally()).to_data())
                for s in range(last + 1)
            ],
            lag=self._lag.to_data(),
            late=self._late,
            in_flight_waits=self._in_flight_waits,
            warmup_requests=self._warmup_requests,
            elapsed=max(0.0, self.last_done - self.measure_start),
            cpu_seconds=cpu,
            wall_seconds=wall,
        )

    def _pick(self) -> tuple[str, int]:
        ops, rng = self._ops, self._rng
        op = (
            ops[0]
            if len(ops) == 1
            else ops[bisect.bisect_right(self._cumulative, rng.random() * self._cumulative[-1])]
        )
        slots = self._share.slots[op]
        return op, slots[0] if len(slots) == 1 else slots[rng.randrange(len(slots))]

    def _take_ticket(self, intended: float) -> bool:
        # A send is allowed if the run is not over and, when measured, within --requests.
        if intended >= self.end:
            return False
        if intended >= self.measure_start and self._budget is not None:
            if self._budget <= 0:
                return False
            self._budget -= 1
        return True

    def _record(self, op: str, code: str | None, intended: float, done: float) -> None:
        if intended < self.measure_start:
            self._warmup_requests += 1
            return
        micros = int((done - intended) * 1_000_000)
        self._tallies[op].add(code, micros)
        second = int(done - self.measure_start)
        tally = self._seconds.get(second)
        if tally is None:
            tally = self._seconds[second] = Tally()
        tally.add(code, micros)
        self.last_done = max(done, self.last_done)

    async def _closed_loop(self, users: int) -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(users):
                tg.start_soon(self._user)

    async def _user(self) -> None:
        for count in itertools.count(1):
            began = now()
            if not self._take_ticket(began):
                return
            op, slot = self._pick()
            code = await self._send(slot)
            self._record(op, code, began, now())
            if count % _YIELD_EVERY == 0:
                await anyio.lowlevel.checkpoint()

    async def _open_loop(self, start: float, rate: float) -> None:
        interval = 1.0 / rate
        first = start + self._share.offset
        limiter = anyio.Semaphore(self._share.max_in_flight)
        async with anyio.create_task_group() as tg:
            with self._scheduler:
                for k in itertools.count():
                    intended = first + k * interval
                    if not self._take_ticket(intended):
                        break
                    delay = intended - now()
                    if delay > 0:
                        await anyio.sleep(delay)
                    if limiter.value == 0:
                        self._in_flight_waits += 1
                    await limiter.acquire()
                    tg.start_soon(self._arrival, intended, limiter)

    async def _arrival(self, intended: float, limiter: anyio.Semaphore) -> None:
        try:
            began = now()
            if intended >= self.measure_start:
                lag = began - intended
                self._lag.record(int(lag * 1_000_000))
                if lag * 1000 > LATE_THRESHOLD_MS:
                    self._late += 1
            op, slot = self._pick()
            code = await self._send(slot)
            self._record(op, code, intended, now())
        finally:
            limiter.release()

    async def _ticker(self) -> None:
        while True:
            await anyio.sleep(_TICK)
            if self._should_stop is not None and self._should_stop():
                self.stop()
            self._emit(now() - self.measure_start)

    def _emit(self, upto: float) -> None:
        # Report every second that has fully passed, including empty ones (a stall shows as 0).
        if self._on_second is None:
            return
        last = int(upto)
        for second in range(self._emitted, last):
            tally = self._seconds.get(second, Tally())
            self._on_second(SecondData(second=second, tally=tally.to_data()))
        self._emitted = max(self._emitted, last)
