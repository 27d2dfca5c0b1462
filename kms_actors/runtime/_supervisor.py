"""One-for-one supervision: restart a crashed actor from its factory, within a budget."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup

from kms_actors.errors import KMSInternalException
from kms_actors.runtime._actor import Actor, ActorRef, ActorStopped, Crashed, Mailbox, run_actor

log = logging.getLogger("kms_actors.runtime")

ExitReason = Literal["stopped", "failed", "cancelled"]
Factory = Callable[[int], Awaitable[Actor[Any]]]
OnExit = Callable[[ActorRef[Any], ExitReason], None]


class Supervisor:
    """Runs child actors in one task group; a crash restarts only that child.

    Each child keeps its mailbox across restarts, so asks queued behind the one that crashed
    are served by the restarted actor. When a child stops for good (Stop message, restart
    budget spent, or shutdown), every ask still queued is answered: ActorStopped for a clean
    stop (the asker may ask a fresh actor), KMSInternalException otherwise.
    """

    def __init__(
        self,
        task_group: TaskGroup,
        *,
        max_restarts: int = 3,
        within_seconds: float = 60.0,
        mailbox_size: int = 1024,
    ) -> None:
        self._tg = task_group
        self.max_restarts = max_restarts
        self.within_seconds = within_seconds
        self.mailbox_size = mailbox_size
        self.restarts = 0  # total restarts, for tests and metrics

    def spawn(self, name: str, factory: Factory, *, on_exit: OnExit | None = None) -> ActorRef[Any]:
        """Start a child whose actor ``factory(attempt)`` builds; return its ref at once.

        Messages sent before the factory finishes wait in the mailbox.
        """
        mailbox: Mailbox[Any] = Mailbox(name, self.mailbox_size)
        self._tg.start_soon(self._supervise, mailbox, factory, on_exit, name=f"actor:{name}")
        return mailbox.ref

    async def _supervise(
        self, mailbox: Mailbox[Any], factory: Factory, on_exit: OnExit | None
    ) -> None:
        name = mailbox.ref.name
        crashes: collections.deque[float] = collections.deque()
        reason: ExitReason = "cancelled"
        attempt = 0
        try:
            while True:
                try:
                    actor = await factory(attempt)
                    await run_actor(actor, mailbox)
                except Crashed as crash:
                    log.error("actor %s crashed", name, exc_info=crash.__cause__)
                except Exception:
                    log.exception("actor %s failed to start", name)
                else:
                    reason = "stopped"
                    return
                now = time.monotonic()
                crashes.append(now)
                while crashes and crashes[0] < now - self.within_seconds:
                    crashes.popleft()
                if len(crashes) > self.max_restarts:
                    log.error("actor %s exceeded its restart budget; stopping it", name)
                    reason = "failed"
                    return
                attempt += 1
                self.restarts += 1
        finally:
            if reason == "stopped":
                mailbox.drain(lambda: ActorStopped(name))
            else:
                mailbox.drain(KMSInternalException)
            if on_exit is not None:
                on_exit(mailbox.ref, reason)


async def stop(ref: ActorRef[Any]) -> None:
    """Ask an actor to stop after what is already queued; return once it has (or was gone)."""
    from kms_actors.runtime._actor import Stop

    try:
        await ref.ask(Stop())
    except ActorStopped:
        pass
    except anyio.get_cancelled_exc_class():
        raise
