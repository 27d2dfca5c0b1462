"""The report: built from merged results, written as JSON, shown as a table, compared.

Latencies are of successful requests, in milliseconds, from the histogram (within its 0.78%
relative error); the histogram itself is in the JSON so reports can be merged and compared.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shlex
import sys
from typing import Final

import aiohttp
import msgspec

from kms_actors.loadtest._histogram import Histogram, HistogramData
from kms_actors.loadtest._model import (
    CPU_LIMIT_PERCENT,
    LATE_LIMIT_PERCENT,
    LATE_THRESHOLD_MS,
    Merged,
    Tally,
)
from kms_actors.loadtest._options import Options, UsageError

FORMAT: Final = "kms-actors-loadtest/1"
PERCENTILES: Final = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))


class Latency(msgspec.Struct, frozen=True, kw_only=True):
    """Latency summary in milliseconds."""

    p50: float
    p90: float
    p99: float
    p99_9: float = msgspec.field(name="p99.9")
    max: float
    min: float
    mean: float

    @classmethod
    def of(cls, histogram: Histogram) -> Latency:
        """Summarize a histogram of microseconds."""
        ms = [histogram.value_at(q) / 1000 for _, q in PERCENTILES]
        return cls(
            p50=ms[0],
            p90=ms[1],
            p99=ms[2],
            p99_9=ms[3],
            max=histogram.max / 1000,
            min=histogram.min / 1000,
            mean=histogram.mean / 1000,
        )


class Outcomes(msgspec.Struct, frozen=True, kw_only=True):
    """Counts and latency of a set of requests."""

    requests: int
    ok: int
    errors: dict[str, int]
    throttles: dict[str, int]
    latency_ms: Latency
    histogram: HistogramData

    @classmethod
    def of(cls, tally: Tally) -> Outcomes:
        """Summarize a tally."""
        return cls(
            requests=tally.requests,
            ok=tally.ok,
            errors=dict(tally.errors.most_common()),
            throttles=dict(tally.throttles.most_common()),
            latency_ms=Latency.of(tally.latency),
            histogram=tally.latency.to_data(),
        )


class TimePoint(msgspec.Struct, frozen=True, kw_only=True):
    """One second of the measured window."""

    second: int
    requests: int
    ok: int
    errors: int
    throttles: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class Generator(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the load generator itself limited the measurement, and why."""

    saturated: bool
    reasons: list[str]
    cpu_percent: list[float]
    late_threshold_ms: float
    late_percent: float | None
    send_lag_ms: Latency | None
    in_flight_waits: int


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a run measured, with what was run and on what."""

    format: str = FORMAT
    command: str
    versions: dict[str, str]
    started_at: str
    target: str
    region: str
    model: str
    options: dict[str, object]
    keys_created: list[str]  # by set-up; scheduled for deletion afterwards
    keys_scheduled_for_deletion: int
    interrupted: bool
    elapsed_s: float
    warmup_requests: int
    throughput: float
    ok_throughput: float
    total: Outcomes
    operations: dict[str, Outcomes]
    timeline: list[TimePoint]
    generator: Generator


def versions() -> dict[str, str]:
    """Return the versions of kms_actors, Python, aiohttp and the event loop libraries."""
    found = {
        "kms_actors": importlib.metadata.version("kms_actors"),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
    }
    for name in ("msgspec", "anyio", "uvloop"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def command_line(argv: list[str] | None = None) -> str:
    """Return the command line as typed (``python -m`` runs shown as such)."""
    argv = list(sys.argv if argv is None else argv)
    if argv and os.path.basename(argv[0]) == "__main__.py":
        package = os.path.basename(os.path.dirname(argv[0]))
        argv[:1] = [
            "python",
            "-m",
            "kms_actors.loadtest" if package == "loadtest" else "kms_actors",
        ]
    elif argv:
        argv[0] = os.path.basename(argv[0])
    return shlex.join(argv)


def _generator(options: Options, merged: Merged) -> Generator:
    reasons: list[str] = []
    busy = [cpu for cpu in merged.cpu_percent if cpu >= CPU_LIMIT_PERCENT]
    if busy:
        where = "the process (embedded service + generator)" if options.embedded else "a worker"
        reasons.append(f"{where} used {max(busy):.0f}% CPU (limit {CPU_LIMIT_PERCENT:g}%)")
    late_percent = None
    if options.rate is not None and merged.lag.count:
        late_percent = 100.0 * merged.late / merged.lag.count
        if late_percent > LATE_LIMIT_PERCENT:
            reasons.append(
                f"{late_percent:.1f}% of sends started more than {LATE_THRESHOLD_MS:g} ms late"
            )
        if merged.in_flight_waits:
            reasons.append(f"--max-in-flight held back sends {merged.in_flight_waits:,} times")
    return Generator(
        saturated=bool(reasons),
        reasons=reasons,
        cpu_percent=[round(cpu, 1) for cpu in merged.cpu_percent],
        late_threshold_ms=LATE_THRESHOLD_MS,
        late_percent=late_percent,
        send_lag_ms=Latency.of(merged.lag) if options.rate is not None else None,
        in_flight_waits=merged.in_flight_waits,
    )


def _timeline(merged: Merged) -> list[TimePoint]:
    points = []
    for second in range(max(merged.timeline, default=-1) + 1):
        tally = merged.timeline.get(second, Tally())
        points.append(
            TimePoint(
                second=second,
                requests=tally.requests,
                ok=tally.ok,
                errors=tally.errors.total(),
                throttles=tally.throttles.total(),
                p50_ms=tally.latency.value_at(50) / 1000,
                p99_ms=tally.latency.value_at(99) / 1000,
                max_ms=tally.latency.max / 1000,
            )
        )
    return points


def build_report(
    options: Options,
    merged: Merged,
    *,
    started_at: str,
    target: str,
    keys_created: list[str],
    keys_deleted: int,
    interrupted: bool,
) -> Report:
    """Return the report of a run."""
    elapsed = merged.elapsed
    shown = msgspec.to_builtins(options)
    for private in ("json_path", "report_dir", "progress", "profile"):
        shown.pop(private, None)
    return Report(
        command=command_line(),
        versions=versions(),
        started_at=started_at,
        target=target,
        region=options.region,
        model=options.model,
        options=shown,
        keys_created=keys_created,
        keys_scheduled_for_deletion=keys_deleted,
        interrupted=interrupted,
        elapsed_s=round(elapsed, 6),
        warmup_requests=merged.warmup_requests,
        throughput=merged.total.requests / elapsed if elapsed > 0 else 0.0,
        ok_throughput=merged.total.ok / elapsed if elapsed > 0 else 0.0,
        total=Outcomes.of(merged.total),
        operations={op: Outcomes.of(tally) for op, tally in merged.operations.items()},
        timeline=_timeline(merged),
        generator=_generator(options, merged),
    )


def encode_report(report: Report) -> bytes:
    """Return the report as indented JSON."""
    return msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n"


def load_report(path: str) -> Report:
    """Read a report written with ``--json``.

    Raises:
        UsageError: The file is missing or is not such a report.
    """
    try:
        with open(path, "rb") as file:
            return msgspec.json.decode(file.read(), type=Report)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except msgspec.DecodeError as error:
        raise UsageError(f"{path} is not a loadtest --json report: {error}") from None
