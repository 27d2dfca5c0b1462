"""The live progress line on stderr: rate, errors, throttles and p99 of the last second."""

from __future__ import annotations

import sys
from typing import TextIO

from kms_actors.loadtest._model import SecondData, Tally
from kms_actors.loadtest._options import Options


class Progress:
    """Merges the workers' per-second tallies and shows each second once all have reported."""

    def __init__(self, options: Options, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self.enabled = options.progress if options.progress is not None else self._tty
        self._options = options
        self._pending: dict[int, tuple[int, Tally]] = {}
        self._requests = 0
        self._shown = False

    def started(self) -> None:
        """Say that the run has begun (and is warming up, if it does)."""
        warmup = self._options.warmup
        self._write(f"warming up for {warmup:g}s ..." if warmup > 0 else "running ...")

    def second(self, worker: int, data: SecondData) -> None:
        """Take worker ``worker``'s tally of one second."""
        del worker  # every worker reports every second once; counting them is enough
        reporters, tally = self._pending.get(data.second, (0, Tally()))
        tally.merge(Tally.from_data(data.tally))
        if reporters + 1 < self._options.workers:
            self._pending[data.second] = (reporters + 1, tally)
            return
        self._pending.pop(data.second, None)
        self._requests += tally.requests
        self._show(data.second, tally)

    def _show(self, second: int, tally: Tally) -> None:
        options = self._options
        if options.requests is not None:
            where = f"{self._requests:,}/{options.requests:,} req"
        else:
            where = f"{second + 1}s/{options.duration or 0:g}s"
        p99 = tally.latency.value_at(99) / 1000
        self._write(
            f"{where}  {tally.requests:,} req/s  errors {tally.errors.total():,}  "
            f"throttled {tally.throttles.total():,}  p99 {p99:.2f} ms"
        )

    def _write(self, line: str) -> None:
        if not self.enabled:
            return
        if self._tty:
            self._stream.write(f"\r\x1b[2K{line}")
        else:
            self._stream.write(f"{line}\n")
        self._stream.flush()
        self._shown = True

    def finish(self) -> None:
        """Clear the progress line (on a terminal) before the report is printed."""
        if self.enabled and self._tty and self._shown:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
