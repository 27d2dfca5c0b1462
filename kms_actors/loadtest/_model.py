"""What a worker measures, and how the parent merges workers into one result."""

from __future__ import annotations

from collections import Counter
from typing import Final

import msgspec

from kms_actors.loadtest._histogram import Histogram, HistogramData

# Codes AWS SDKs treat as throttling (botocore's list, minus LimitExceededException, which KMS
# uses for quotas, not request rates), plus a bare HTTP 429.
THROTTLE_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "HTTP 429",
    }
)
LATE_THRESHOLD_MS: Final = 5.0  # an open-loop send this late counts as "late"
LATE_LIMIT_PERCENT: Final = 1.0  # more late sends than this: the generator was saturated
CPU_LIMIT_PERCENT: Final = 90.0  # a worker this busy: the generator was saturated


class Tally:
    """Outcomes of requests: successes (with their latency), errors and throttles by code."""

    __slots__ = ("errors", "latency", "ok", "throttles")

    def __init__(self) -> None:
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.throttles: Counter[str] = Counter()
        self.latency = Histogram()

    def add(self, code: str | None, micros: int) -> None:
        """Count one outcome: ``code`` None is a success taking ``micros``."""
        if code is None:
            self.ok += 1
            self.latency.record(micros)
        elif code in THROTTLE_CODES:
            self.throttles[code] += 1
        else:
            self.errors[code] += 1

    @property
    def requests(self) -> int:
        """Return the number of completed requests, whatever their outcome."""
        return self.ok + self.errors.total() + self.throttles.total()

    def merge(self, other: Tally) -> None:
        """Add another tally's outcomes to this one."""
        self.ok += other.ok
        self.errors.update(other.errors)
        self.throttles.update(other.throttles)
        self.latency.merge(other.latency)

    def to_data(self) -> TallyData:
        """Return the tally as a serializable struct."""
        return TallyData(
            ok=self.ok,
            errors=dict(self.errors),
            throttles=dict(self.throttles),
            latency=self.latency.to_data(),
        )

    @classmethod
    def from_data(cls, data: TallyData) -> Tally:
        """Rebuild a tally from ``to_data``'s output."""
        tally = cls()
        tally.ok = data.ok
        tally.errors.update(data.errors)
        tally.throttles.update(data.throttles)
        tally.latency = Histogram.from_data(data.latency)
        return tally


class TallyData(msgspec.Struct, frozen=True, kw_only=True):
    """A ``Tally`` in transit between processes."""

    ok: int
    errors: dict[str, int]
    throttles: dict[str, int]
    latency: HistogramData


class SecondData(msgspec.Struct, frozen=True, kw_only=True):
    """Outcomes completed during one second of the measured window (second 0 first)."""

    second: int
    tally: TallyData


class WorkerResult(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one worker measured."""

    index: int
    operations: dict[str, TallyData]
    timeline: list[SecondData]
    lag: HistogramData  # open loop: how late each send started after its intended time
    late: int  # open loop: sends later than LATE_THRESHOLD_MS
    in_flight_waits: int  # open loop: sends held back because --max-in-flight was reached
    warmup_requests: int
    elapsed: float  # from the start of measurement to the last completion
    cpu_seconds: float
    wall_seconds: float


class Merged:
    """All workers' results combined."""

    def __init__(self, results: list[WorkerResult]) -> None:
        self.workers = len(results)
        self.operations: dict[str, Tally] = {}
        self.total = Tally()
        self.timeline: dict[int, Tally] = {}
        self.lag = Histogram()
        self.late = sum(r.late for r in results)
        self.in_flight_waits = sum(r.in_flight_waits for r in results)
        self.warmup_requests = sum(r.warmup_requests for r in results)
        self.elapsed = max((r.elapsed for r in results), default=0.0)
        self.cpu_percent = [
            100.0 * r.cpu_seconds / r.wall_seconds if r.wall_seconds > 0 else 0.0 for r in results
        ]
        for result in results:
            for op, data in result.operations.items():
                tally = Tally.from_data(data)
                self.operations.setdefault(op, Tally()).merge(tally)
                self.total.merge(tally)
            for point in result.timeline:
                self.timeline.setdefault(point.second, Tally()).merge(Tally.from_data(point.tally))
            self.lag.merge(Histogram.from_data(result.lag))
