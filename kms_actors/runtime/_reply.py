"""One-shot reply slots: how an actor answers an ask."""

from __future__ import annotations

from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


class Reply(Generic[T]):
    """A slot the actor fills exactly once with a value or an error; the asker awaits it.

    Filling a slot nobody waits for any more (the asker was cancelled) is harmless: the actor
    finishes the command and the answer is dropped.
    """

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = anyio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    @property
    def answered(self) -> bool:
        """Say whether the slot has been filled."""
        return self._done.is_set()

    def set(self, value: T) -> None:
        """Answer with a value (ignored if already answered)."""
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def fail(self, error: BaseException) -> None:
        """Answer with an error the asker will raise (ignored if already answered)."""
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def wait(self) -> T:
        """Wait for the answer; raise the error if the actor answered with one."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
