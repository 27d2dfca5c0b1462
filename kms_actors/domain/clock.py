"""Clocks: the only source of "now" for the service, so tests can move time."""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    """Wall-clock time for timestamps and timers (epoch seconds, UTC)."""

    def now(self) -> float:
        """Return the current time in epoch seconds."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return at or after ``deadline`` (epoch seconds)."""
        ...


class SystemClock:
    """The real clock."""

    # Timers re-check the wall clock at least this often, so a clock jump is noticed.
    max_nap: float = 60.0

    def now(self) -> float:
        """Return the current time in epoch seconds."""
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until the wall clock reaches ``deadline``."""
        # Polling in naps (not one long sleep) notices wall-clock jumps; nothing else wakes us.
        while (left := deadline - time.time()) > 0:  # noqa: ASYNC110
            await anyio.sleep(min(left, self.max_nap))


class FakeClock:
    """A clock that moves only when told to; sleepers wake when it passes their deadline."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._moved: anyio.Event | None = None  # created lazily: needs a running event loop

    def now(self) -> float:
        """Return the fake current time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
        moved, self._moved = self._moved, None
        if moved is not None:
            moved.set()

    async def sleep_until(self, deadline: float) -> None:
        """Wait until ``advance`` has moved time to ``deadline`` or later."""
        while self._now < deadline:
            if self._moved is None:
                self._moved = anyio.Event()
            await self._moved.wait()
