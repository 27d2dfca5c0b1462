"""Timers for key lifecycle events: a key pending deletion is deleted when its date passes."""

from __future__ import annotations

import heapq
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from kms_actors.domain.clock import Clock

log = logging.getLogger("kms_actors.keys")


class DeletionScheduler:
    """Holds the deletion date of every key pending deletion and fires when one is due.

    Time comes from an injectable Clock, so tests move a fake clock 30 days forward instead of
    waiting. Firing calls ``purge(key_id)``, which deletes the key only if it is still pending
    deletion and due (a cancelled deletion simply finds nothing to do).
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}
        self._changed: anyio.Event | None = None
        self.fired = 0

    def schedule(self, key_id: str, due: float) -> None:
        """Remember that ``key_id`` is to be deleted at ``due`` (epoch seconds)."""
        self._due[key_id] = due
        heapq.heappush(self._heap, (due, key_id))
        self._poke()

    def cancel(self, key_id: str) -> None:
        """Forget the deletion of ``key_id``."""
        self._due.pop(key_id, None)

    def pending(self) -> dict[str, float]:
        """Return key id -> deletion date for every scheduled deletion."""
        return dict(self._due)

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def run(
        self,
        purge: Callable[[str], Awaitable[Any]],
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Fire due deletions forever."""
        task_status.started()
        while True:
            self._changed = anyio.Event()
            await self._fire_due(purge)
            if not self._heap:
                await self._changed.wait()
                continue
            next_due = self._heap[0][0]
            async with anyio.create_task_group() as tg:

                async def sleeper(deadline: float = next_due) -> None:
                    await self._clock.sleep_until(deadline)
                    tg.cancel_scope.cancel()

                async def waker(changed: anyio.Event = self._changed) -> None:
                    await changed.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(sleeper)
                tg.start_soon(waker)

    async def _fire_due(self, purge: Callable[[str], Awaitable[Any]]) -> None:
        now = self._clock.now()
        while self._heap and self._heap[0][0] <= now:
            due, key_id = heapq.heappop(self._heap)
            if self._due.get(key_id) != due:
                continue  # cancelled or rescheduled
            del self._due[key_id]
            try:
                await purge(key_id)
                self.fired += 1
            except Exception:
                # Keep the key: it is retried on the next start (its row still has the date).
                log.exception("deleting key %s failed", key_id)
